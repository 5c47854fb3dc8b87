import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../shared/errors/index.js';
import { loadConfigSource } from '../../../shared/config/load.js';
import { ConfigSource } from '../../../shared/config/source.js';
import type { InnerConfig, LocalConfig, OuterConfig } from '../../../shared/config/types.js';
import { listenerOf } from '../../helpers/config.js';
import { awsAppEnvironment } from '../../../proxy-inner/app/aws-environment.js';

const PCR = 'ab'.repeat(48);

function load(yaml: string, role?: 'inner' | 'outer' | 'local') {
  return loadConfigSource(ConfigSource.parse('/etc/proxy.yaml', yaml), role ? { role } : {});
}

function problems(yaml: string, role?: 'inner' | 'outer' | 'local'): string[] {
  try {
    load(yaml, role);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('the config was accepted');
}

describe('config: AWS listener kinds and sections', () => {
  it('normalizes kms, imds and attestation_api listeners with nsm and aws settings', () => {
    const c = load(`
role: inner
nsm: { mode: simulator, simulator: { pcrs: { "0": "${PCR}" }, root_certificate_path: root.pem } }
aws: { region: eu-west-1, credential_refresh_margin: 2m }
listeners:
  - { name: kms, address: "tcp://127.0.0.1:9999", kms: { egress_proxy: "http://127.0.0.1:10000", attestation_reuse: 30s } }
  - { name: imds, address: "tcp://127.0.0.1:9998", imds: {} }
  - { name: api, address: "unix:///run/api.sock", attestation_api: {} }
`) as InnerConfig;
    assert.deepEqual(listenerOf(c, 'kms').kms, {
      endpoint: undefined,
      endpoints: {},
      egressProxy: 'http://127.0.0.1:10000',
      caFile: undefined,
      attestationReuseMs: 30_000,
      maxBodyBytes: 65536,
    });
    assert.deepEqual(
      c.listeners.map((l) => l.kind),
      ['kms', 'imds', 'attestation_api'],
    );
    assert.equal(c.nsm.mode, 'simulator');
    assert.deepEqual(c.nsm.simulator.pcrs.get(0), Buffer.from(PCR, 'hex'));
    assert.equal(c.nsm.simulator.rootCertificatePath, '/etc/root.pem');
    assert.deepEqual(c.aws, { region: 'eu-west-1', credentialRefreshMarginMs: 120_000 });
    assert.deepEqual(awsAppEnvironment(c, [{ name: 'kms', address: { kind: 'tcp', host: '127.0.0.1', port: 9999 } }], 'eu-west-1'), {
      AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9998',
      AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9999',
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
    });
  });

  it('enables the outer IMDS relay with IMDSv2 defaults', () => {
    const c = load('role: outer\nimds_relay: {}\n') as OuterConfig;
    assert.deepEqual(c.imdsRelay, { upstream: 'http://169.254.169.254', tokenTtlSeconds: 21600, timeoutMs: 2000 });
    assert.equal((load('role: outer\n') as OuterConfig).imdsRelay, undefined);
  });

  it('refuses AWS listeners off loopback, on the outer, with two kinds, or with a bad PCR', () => {
    assert.match(
      problems('role: inner\nlisteners: [{ name: k, address: "tcp://0.0.0.0:9999", kms: {} }]\n').join('\n'),
      /must listen on loopback/,
    );
    assert.match(
      problems('role: outer\nlisteners: [{ name: k, address: "tcp://127.0.0.1:9999", kms: {} }]\n').join('\n'),
      /only the inner side/,
    );
    assert.match(
      problems(
        'role: inner\nclusters: [{ name: a, endpoints: ["tcp://127.0.0.1:1"] }]\nlisteners: [{ name: k, address: "tcp://127.0.0.1:9999", kms: {}, cluster: a }]\n',
      ).join('\n'),
      /exactly one kind/,
    );
    assert.match(problems('role: inner\nnsm: { simulator: { pcrs: { "0": "abcd" } } }\n').join('\n'), /nsm\.simulator\.pcrs\[0\]/);
    assert.match(
      problems('role: inner\nlisteners: [{ name: k, address: "tcp://127.0.0.1:9999", kms: { attestation_reuse: 10m } }]\n').join('\n'),
      /at most 5m/,
    );
    assert.match(problems('role: inner\nimds_relay: {}\n').join('\n'), /belongs to the outer side/);
    assert.match(problems('role: outer\nimds_relay: { token_ttl: 7h }\n').join('\n'), /1s to 6h/);
  });

  it("translates an Enclaver manifest's kms_proxy and api", () => {
    const manifest = `
version: v1
name: app
target: app:enclave
sources: { app: app:latest }
kms_proxy: { listen_port: 9999, endpoints: { eu-west-1: kms-fips.eu-west-1.amazonaws.com } }
api: { listen_port: 9000 }
`;
    const local = load(manifest, 'local') as LocalConfig;
    const kms = listenerOf(local.inner, 'kms');
    assert.equal(kms.address.kind === 'tcp' && kms.address.port, 9999);
    assert.deepEqual(kms.kms.endpoints, { 'eu-west-1': 'kms-fips.eu-west-1.amazonaws.com' });
    const api = listenerOf(local.inner, 'attestation_api');
    assert.equal(api.address.kind === 'tcp' && api.address.port, 9000);
    assert.ok(local.outer.imdsRelay, 'the outer relays the credentials the KMS proxy signs with');
  });
});
