/** Metrics of the AWS side of the inner proxy, on the process registry that /metrics serves. */
import { Counter } from '../../shared/metrics/prom.js';
import { registry } from '../../shared/metrics/registry.js';

export const kmsRequests = new Counter({
  name: 'enclaver_kms_requests_total',
  help: 'KMS requests through the proxy, by action and outcome (attested, passed_through, kms_error, rejected, failed)',
  labelNames: ['action', 'outcome'] as const,
  registers: [registry],
});

export const attestationReuseHits = new Counter({
  name: 'enclaver_attestation_reuse_hits_total',
  help: 'KMS requests that reused a recent attestation document instead of asking the NSM',
  registers: [registry],
});

export const credentialRefreshes = new Counter({
  name: 'enclaver_credential_refreshes_total',
  help: 'Role credentials fetched through the IMDS relay',
  registers: [registry],
});
