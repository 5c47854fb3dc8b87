/**
 * The egress parts of the config: the `egress` listener kind, `egress_relay`, `audit`, the
 * outer's --audit-log/--hosts flags, and the mapping of an Enclaver manifest's `egress` section.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { configProblems, loadText } from '../../helpers/config.js';
import { parseSize } from '../../../shared/config/spec.js';
import type { InnerConfig, LocalConfig, OuterConfig } from '../../../shared/config/types.js';
import { listenerOf } from '../../helpers/config.js';
import { decide } from '../../../shared/egress/policy.js';
import { parseAuthority } from '../../../shared/egress/destination.js';
import { formatAddress } from '../../../shared/transport/address.js';

const INNER = `role: inner
listeners:
  - name: egress
    address: tcp://127.0.0.1:10000
    egress:
      allow: ["kms.*.amazonaws.com:443", "10.0.0.0/8:5432"]
      deny: ["169.254.0.0/16"]
`;

describe('egress config', () => {
  test('an egress listener gets its compiled policy and defaults', () => {
    const c = loadText(INNER) as InnerConfig;
    const e = listenerOf(c, 'egress').egress;
    assert.deepEqual(e.protocols, ['http_connect', 'http', 'socks5']);
    assert.equal(e.requireSniMatch, false);
    assert.deepEqual([e.handshakeTimeoutMs, e.connectTimeoutMs], [15000, 10000]);
    assert.ok(decide(e.policy, parseAuthority('kms.eu-west-1.amazonaws.com:443')).allowed);
    assert.ok(!decide(e.policy, parseAuthority('kms.eu-west-1.amazonaws.com:80')).allowed);
  });

  test('a bad policy entry is reported at its YAML line and path', () => {
    const ps = configProblems(INNER.replace('"10.0.0.0/8:5432"', '"10.0.0.0/33"'));
    assert.equal(ps.length, 1);
    assert.match(ps[0]!, /^proxy\.yaml:6:\d+: listeners\[0\]\.egress\.allow\[1\]: "10\.0\.0\.0\/33": not a valid address or CIDR/);
  });

  test('egress belongs inside: on the outer it is an error, as is egress_relay on the inner', () => {
    const outer = configProblems(INNER.replace('role: inner', 'role: outer'));
    assert.ok(
      outer.some((p) => /listeners\[0\]\.egress: `egress` listeners run inside the enclave/.test(p)),
      outer.join('\n'),
    );
    const inner = configProblems(`${INNER}egress_relay: {}\n`);
    assert.ok(
      inner.some((p) => /egress_relay: `egress_relay` belongs to the outer side/.test(p)),
      inner.join('\n'),
    );
  });

  test('an egress listener must stay on loopback, and has one kind', () => {
    const ps = configProblems(INNER.replace('tcp://127.0.0.1:10000', 'tcp://0.0.0.0:10000'));
    assert.ok(
      ps.some((p) => /a egress listener must listen on loopback/.test(p)),
      ps.join('\n'),
    );
    const both = configProblems(INNER.replace('    egress:\n', '    cluster: x\n    egress:\n'));
    assert.ok(
      both.some((p) => /exactly one kind, this one has cluster and egress/.test(p)),
      both.join('\n'),
    );
  });

  test('egress_relay and audit on the outer', () => {
    const c = loadText(`role: outer
egress_relay:
  connect_timeout: 2s
  hosts_file: hosts
  allow_private: [10.0.0.0/8, "fd00::/8"]
  upstream_proxy: { url: "http://proxy.corp:3128", hosts: ["**.corp.example"] }
audit:
  file: /var/log/audit.log
  max_size: 10MiB
  keep: 2
`) as OuterConfig;
    const r = c.egressRelay!;
    assert.equal(r.connectTimeoutMs, 2000);
    assert.equal(r.hostsFile, path.resolve('hosts'));
    assert.ok(Array.isArray(r.allowPrivate) && r.allowPrivate.length === 2);
    assert.equal(r.upstreamProxy!.url, 'http://proxy.corp:3128');
    assert.deepEqual(
      r.upstreamProxy!.hosts!.map((h) => h.text),
      ['**.corp.example'],
    );
    assert.deepEqual(c.audit, {
      stdout: false,
      file: { path: '/var/log/audit.log', maxBytes: 10 * 1024 * 1024, keep: 2, fsync: false },
      syslog: undefined,
    });
    const bad = configProblems(
      'role: outer\negress_relay:\n  allow_private: [not-a-cidr]\n  upstream_proxy: { url: "http://user:pw@proxy:3128" }\n',
    );
    assert.ok(
      bad.some((p) => /egress_relay\.allow_private\[0\]: "not-a-cidr" is not an IP address or CIDR/.test(p)),
      bad.join('\n'),
    );
    assert.ok(
      bad.some((p) => /egress_relay\.upstream_proxy\.url: .*credentials are not supported/.test(p)),
      bad.join('\n'),
    );
  });

  test('audit keys on the wrong side are errors', () => {
    const inner = configProblems(`${INNER}audit: { file: /tmp/a.log }\n`);
    assert.ok(
      inner.some((p) => /audit\.file: `audit\.file` is a setting of the outer side/.test(p)),
      inner.join('\n'),
    );
    const outer = configProblems('role: outer\naudit: { buffer_records: 5 }\n');
    assert.ok(
      outer.some((p) => /audit\.buffer_records: `audit\.buffer_records` is a setting of the inner side/.test(p)),
      outer.join('\n'),
    );
  });

  test('audit checkpoints on the inner, syslog on the outer', () => {
    const inner = loadText(`${INNER}audit: { checkpoint: { records: 50, interval: 5s } }\n`) as InnerConfig;
    assert.deepEqual(inner.audit.checkpoint, { records: 50, intervalMs: 5000 });
    assert.deepEqual((loadText(INNER) as InnerConfig).audit.checkpoint, { records: 1000, intervalMs: 60_000 });
    const outer = loadText(
      'role: outer\naudit:\n  syslog: { address: "tcp://127.0.0.1:6514", tls: { server_name: siem.corp }, facility: auth }\n',
    ) as OuterConfig;
    assert.deepEqual(outer.audit!.syslog, {
      address: { kind: 'tcp', host: '127.0.0.1', port: 6514 },
      transport: { kind: 'tls', ca: undefined, serverName: 'siem.corp' },
      facility: 'auth',
      appName: 'enclaver-proxy',
    });
    const wrong = configProblems(`${INNER}audit: { syslog: { address: "tcp://127.0.0.1:514" } }\n`);
    assert.ok(
      wrong.some((p) => /audit\.syslog: `audit\.syslog` is a setting of the outer side/.test(p)),
      wrong.join('\n'),
    );
    const unix = configProblems('role: outer\naudit: { syslog: { address: "unix:///dev/log" } }\n');
    assert.ok(
      unix.some((p) => /audit\.syslog\.address/.test(p)),
      unix.join('\n'),
    );
    const noCa = configProblems('role: outer\naudit: { syslog: { address: "tcp://127.0.0.1:514", tls: { ca: /nonexistent/ca.pem } } }\n');
    assert.ok(
      noCa.some((p) => /audit\.syslog\.tls\.ca: cannot read the CA file/.test(p)),
      noCa.join('\n'),
    );
  });

  test('a local pair whose inner has an egress listener gets the relay without asking', () => {
    const c = loadText(
      `role: local\nouter: {}\ninner:\n${INNER.split('\n')
        .slice(1)
        .map((l) => `  ${l}`)
        .join('\n')}`,
    ) as LocalConfig;
    assert.ok(c.outer.egressRelay);
    assert.equal(c.outer.egressRelay.allowPrivate, false);
  });

  test('--hosts enables the relay; --audit-log writes to a file and keeps stdout for logs', () => {
    assert.equal((loadText('role: outer\n') as OuterConfig).egressRelay, undefined);
    const outer = loadText('role: outer\n', { hosts: 'h.txt', auditLog: 'a.log' }) as OuterConfig;
    assert.equal(outer.egressRelay!.hostsFile, path.resolve('h.txt'));
    assert.deepEqual(outer.audit, {
      stdout: false,
      file: { path: path.resolve('a.log'), maxBytes: parseSize('100MiB'), keep: 5, fsync: false },
      syslog: undefined,
    });
  });

  test('sizes', () => {
    assert.deepEqual(['0', '512', '1KiB', '100MiB', '2GiB'].map(parseSize), [0, 512, 1024, 100 * 2 ** 20, 2 * 2 ** 30]);
    assert.throws(() => parseSize('1MB'));
  });
});

describe('Enclaver manifest egress', () => {
  const MANIFEST = `version: v1
name: "test"
target: "app:enclave"
sources: { app: "registry.example/app:latest" }
egress:
  allow: [kms.*.amazonaws.com, "**.s3.amazonaws.com", 169.254.169.254]
  deny: [admin.s3.amazonaws.com]
  proxy_port: 9000
kms_proxy: { listen_port: 9999 }
`;

  test('allow/deny become the inner egress listener unchanged, on proxy_port; KMS goes through it', () => {
    const inner = loadText(MANIFEST, { role: 'inner', appArgv: ['/app'] }) as InnerConfig;
    const l = listenerOf(inner, 'egress');
    assert.equal(formatAddress(l.address), 'tcp://127.0.0.1:9000');
    assert.deepEqual(
      l.egress.policy.allow.map((r) => r.text),
      ['kms.*.amazonaws.com', '**.s3.amazonaws.com', '169.254.169.254'],
    );
    assert.deepEqual(
      l.egress.policy.deny.map((r) => r.text),
      ['admin.s3.amazonaws.com'],
    );
    // Enclaver's meaning: no port = any port, `**` needs at least one label, deny wins.
    const judge = (a: string) => decide(l.egress.policy, parseAuthority(a)).allowed;
    assert.deepEqual(
      [
        'kms.us-east-1.amazonaws.com:8443',
        'x.s3.amazonaws.com:443',
        's3.amazonaws.com:443',
        'admin.s3.amazonaws.com:443',
        '169.254.169.254:80',
      ].map(judge),
      [true, true, false, false, true],
    );
    assert.equal(listenerOf(inner, 'kms').kms.egressProxy, 'http://127.0.0.1:9000');
  });

  test('the outer gets the egress relay', () => {
    const outer = loadText(MANIFEST, { role: 'outer' }) as OuterConfig;
    assert.ok(outer.egressRelay);
    assert.ok(outer.listeners.every((l) => l.kind === 'tcp_proxy'));
  });
});
