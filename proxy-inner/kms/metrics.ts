/** Metrics of the AWS side of the inner proxy, on prom-client's default registry. */
import { Counter } from 'prom-client';

export const kmsRequests = new Counter({
  name: 'enclaver_kms_requests_total',
  help: 'KMS requests through the proxy, by action and outcome (attested, passed_through, kms_error, rejected, failed)',
  labelNames: ['action', 'outcome'] as const,
});

export const attestationReuseHits = new Counter({
  name: 'enclaver_attestation_reuse_hits_total',
  help: 'KMS requests that reused a recent attestation document instead of asking the NSM',
});

export const credentialRefreshes = new Counter({
  name: 'enclaver_credential_refreshes_total',
  help: 'Role credentials fetched through the IMDS relay',
});
