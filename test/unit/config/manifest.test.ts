/**
 * Enclaver manifests: validated as strictly as Enclaver does, translated into the two sides.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parsePublish } from '../../../shared/config/enclaver-manifest.js';
import { loadConfigSource, type LoadOptions } from '../../../shared/config/load.js';
import { ConfigSource } from '../../../shared/config/source.js';
import type { InnerConfig, LocalConfig, OuterConfig } from '../../../shared/config/types.js';
import { listenerOf } from '../../helpers/config.js';
import { ConfigError, formatProblem } from '../../../shared/errors/index.js';
import { formatAddress } from '../../../shared/transport/address.js';
import { ROOT } from '../../helpers/paths.js';

const MANIFEST = `version: v1
name: "test"
target: "app:enclave-latest"
sources:
  app: "registry.example/app:latest"
defaults:
  memory_mb: 4096
ingress:
  - listen_port: 8001
  - listen_port: 8443
    tls: { key_file: /etc/tls/key.pem, cert_file: /etc/tls/cert.pem }
`;

function load(text: string, opts: LoadOptions) {
  return loadConfigSource(ConfigSource.parse('enclaver.yaml', text), opts);
}

function problems(text: string, opts: LoadOptions): string[] {
  try {
    load(text, opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map(formatProblem);
  }
  assert.fail('manifest was accepted');
}

describe('Enclaver manifest translation', () => {
  test('the no-fly-list manifest (configs/) runs as both sides: ingress, egress allowlist, KMS proxy', () => {
    const file = path.join(ROOT, 'configs/enclaver-no-fly-list.yaml');
    const local = loadConfigSource(ConfigSource.read(file), { role: 'local', publish: [parsePublish('18001:8001')] }) as LocalConfig;
    const egress = listenerOf(local.inner, 'egress');
    assert.equal(formatAddress(egress.address), 'tcp://127.0.0.1:10000', "Enclaver's default proxy_port");
    assert.deepEqual(
      egress.egress.policy.allow.map((r) => r.text),
      ['kms.*.amazonaws.com', 's3.amazonaws.com', '169.254.169.254'],
      'patterns carried over unchanged',
    );
    const kms = listenerOf(local.inner, 'kms');
    assert.equal(formatAddress(kms.address), 'tcp://127.0.0.1:9999');
    assert.equal(kms.kms.egressProxy, 'http://127.0.0.1:10000', 'KMS goes out through the egress allowlist');
    assert.ok(local.outer.egressRelay, 'the outer relays egress');
    assert.ok(local.outer.imdsRelay, 'the outer relays IMDS credentials for the KMS proxy');
    assert.deepEqual(
      local.outer.listeners.map((l) => formatAddress(l.address)),
      ['tcp://127.0.0.1:18001'],
    );
  });

  test('as outer: each ingress port becomes a TCP listener → vsock cluster with PROXY v2', () => {
    const c = load(MANIFEST, { role: 'outer', enclaveCid: 21 }) as OuterConfig;
    assert.equal(c.role, 'outer');
    assert.deepEqual(
      c.listeners.map((l) => formatAddress(l.address)),
      ['tcp://0.0.0.0:8001', 'tcp://0.0.0.0:8443'],
    );
    const cl = c.listeners[1]!.cluster;
    assert.deepEqual(cl.endpoints.map(formatAddress), ['vsock://21:8443']);
    assert.equal(cl.sendProxyProtocol, true);
    assert.equal(c.enclave.cid, 21);
  });

  test('as inner: vsock listener expecting PROXY v2 → the app on the same port; TLS files honoured', () => {
    const c = load(MANIFEST, { role: 'inner', appArgv: ['/app/server'] }) as InnerConfig;
    assert.deepEqual(
      c.listeners.map((l) => formatAddress(l.address)),
      ['vsock://any:8001', 'vsock://any:8443'],
    );
    assert.ok(c.listeners.every((l) => l.expectProxyProtocol));
    assert.deepEqual(listenerOf({ listeners: c.listeners.slice(1) }, 'tcp_proxy').tls, {
      source: 'files',
      certificate: '/etc/tls/cert.pem',
      privateKey: { file: '/etc/tls/key.pem' },
    });
    assert.deepEqual(listenerOf(c, 'tcp_proxy').cluster.endpoints.map(formatAddress), ['tcp://127.0.0.1:8001']);
    assert.deepEqual(c.app!.argv, ['/app/server']);
  });

  test('as local: -p publishes the enclave port on a host port (the docker convention)', () => {
    const c = load(MANIFEST, { role: 'local', publish: [parsePublish('18001:8001'), parsePublish('127.0.0.1:18443:8443')] }) as LocalConfig;
    assert.deepEqual(
      c.outer.listeners.map((l) => formatAddress(l.address)),
      ['tcp://127.0.0.1:18001', 'tcp://127.0.0.1:18443'],
    );
  });

  test('a manifest needs --role', () => {
    assert.match(
      problems(MANIFEST, {})[0]!,
      /this is an Enclaver manifest, which describes both sides: choose one with --role inner\|outer\|local/,
    );
  });

  test('unknown fields are errors, as in Enclaver', () => {
    const ps = problems(`${MANIFEST}extra_field: 1\n`, { role: 'outer' });
    assert.ok(
      ps.some((p) => /^enclaver\.yaml:12:1: extra_field: unknown key "extra_field"/.test(p)),
      ps.join('\n'),
    );
    const ps2 = problems(MANIFEST.replace('  - listen_port: 8001\n', '  - listen_port: 8001\n    protocol: tcp\n'), { role: 'outer' });
    assert.ok(
      ps2.some((p) => /ingress\[0\]\.protocol: unknown key "protocol"/.test(p)),
      ps2.join('\n'),
    );
  });

  test('missing required manifest fields are named', () => {
    const ps = problems('version: v1\nname: x\n', { role: 'outer' });
    assert.ok(ps.some((p) => /missing required key "target"/.test(p)));
    assert.ok(ps.some((p) => /missing required key "sources"/.test(p)));
  });

  test('an ingress port in the reserved range is refused', () => {
    const ps = problems(MANIFEST.replace('8001', '17002'), { role: 'outer' });
    assert.ok(
      ps.some((p) => /ingress\[0\]\.listen_port: port 17002 is reserved/.test(p)),
      ps.join('\n'),
    );
  });

  test('local mode without -p explains the port collision with the app', () => {
    const ps = problems(MANIFEST, { role: 'local' });
    assert.ok(
      ps.some((p) =>
        /^enclaver\.yaml:9:\d+: ingress\[0\]\.listen_port: in local mode the app listens on 127\.0\.0\.1:8001 itself; publish the ingress on another host port, e\.g\. -p 18001:8001/.test(
          p,
        ),
      ),
      ps.join('\n'),
    );
  });

  test('-p for a port the manifest does not have is refused', () => {
    const ps = problems(MANIFEST, { role: 'outer', publish: [parsePublish('9000:9999')] });
    assert.ok(ps.some((p) => /-p 9000:9999: the manifest has no ingress with listen_port 9999/.test(p)));
  });
});
