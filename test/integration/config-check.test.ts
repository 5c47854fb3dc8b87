/**
 * `--check` and the command-line overrides as a user meets them: the printed config is itself a
 * valid config (fed back, it prints the same again), every problem is reported in one run
 * (schema and semantics together), and an override that has no place in the config given is
 * refused by name instead of being ignored.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT } from '../helpers/paths.js';
import { runCliToEnd, tempDir, writeConfig } from '../helpers/process.js';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The extra arguments an example needs: manifests describe both sides and publish a port. */
function argsFor(file: string): string[] {
  return /enclaver/.test(file) ? ['--role', 'local', '-p', '18001:8001'] : [];
}

describe('--check prints a config that can be fed back', () => {
  const examples = fs.readdirSync(path.join(ROOT, 'configs')).filter((f) => /\.ya?ml$/.test(f));
  for (const f of examples) {
    test(f, async () => {
      const first = await runCliToEnd(['--config', path.join(ROOT, 'configs', f), '--check', ...argsFor(f)]);
      assert.equal(first.code, 0, first.stderr);
      // The printed config is a proxy.yaml (a manifest comes out translated): no role flags needed.
      const printed = writeConfig(dir, `printed-${f}`, first.stdout);
      const second = await runCliToEnd(['--config', printed, '--check']);
      assert.equal(second.code, 0, `${f}: the printed config is refused:\n${second.stderr}`);
      assert.equal(second.stdout, first.stdout, `${f}: printing the printed config changes it`);
    });
  }

  test('defaults are written out and relative paths made absolute', async () => {
    fs.writeFileSync(path.join(dir, 'hosts.txt'), '');
    const file = writeConfig(dir, 'relative.yaml', 'role: outer\negress_relay: { hosts_file: hosts.txt }\n');
    const r = await runCliToEnd(['--config', file, '--check']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`hosts_file: ${path.join(dir, 'hosts.txt').replace(/[.]/g, '\\.')}`));
    assert.match(r.stdout, /connect_timeout: 5s/);
    assert.match(r.stdout, /address: tcp:\/\/127\.0\.0\.1:9902/);
  });
});

describe('every problem in one run', () => {
  test('a schema error does not hide a semantic error elsewhere', async () => {
    const file = writeConfig(
      dir,
      'both.yaml',
      `role: inner
listeners:
  - name: web
    address: vsock://any:8443
    cluster: ap
    max_connections: many
clusters:
  - name: app
    endpoints: [tcp://127.0.0.1:8080]
`,
    );
    const r = await runCliToEnd(['--config', file, '--check']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /:6:22: listeners\[0\]\.max_connections: expected integer, got string "many"/);
    assert.match(r.stderr, /:5:14: listeners\[0\]\.cluster: unknown cluster "ap" \(defined: app\)/);
  });
});

describe('overrides that do not apply are refused by name', () => {
  const inner = () => writeConfig(dir, 'inner.yaml', 'role: inner\n');
  const cases: [string, () => string, string[], RegExp][] = [
    ['--enclave-cid on a proxy.yaml', inner, ['--enclave-cid', '21'], /--enclave-cid applies to Enclaver manifests/],
    ['--hosts on an inner', inner, ['--hosts', 'h.txt'], /--hosts belongs to the outer side/],
    ['--audit-log on an inner', inner, ['--audit-log', 'a.log'], /--audit-log belongs to the outer side/],
    ['--inner-admin on one side', inner, ['--inner-admin', 'none'], /--inner-admin applies to role local/],
    [
      'an app on an outer',
      () => writeConfig(dir, 'outer.yaml', 'role: outer\n'),
      ['--', 'true'],
      /an app command after -- needs role inner or local/,
    ],
  ];
  for (const [name, config, args, expected] of cases) {
    test(name, async () => {
      const r = await runCliToEnd(['--config', config(), '--check', ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, expected);
    });
  }

  test('--hosts and --audit-log on an outer land in its document', async () => {
    fs.writeFileSync(path.join(dir, 'h.txt'), '');
    const file = writeConfig(dir, 'outer-flags.yaml', 'role: outer\n');
    const r = await runCliToEnd(['--config', file, '--check', '--hosts', 'h.txt', '--audit-log', 'a.log'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`hosts_file: ${path.join(dir, 'h.txt').replace(/[.]/g, '\\.')}`));
    assert.match(r.stdout, new RegExp(`file: ${path.join(dir, 'a.log').replace(/[.]/g, '\\.')}`));
    assert.match(r.stdout, /stdout: false/);
  });
});

describe('Enclaver manifest keys used only by the builder', () => {
  test('each one present is named in a notice, and the config still runs', async () => {
    const file = writeConfig(
      dir,
      'enclaver.yaml',
      `version: v1
name: app
target: app:enclave
sources: { app: app:latest }
defaults: { memory_mb: 4096 }
ingress: [{ listen_port: 8001 }]
`,
    );
    const r = await runCliToEnd(['--config', file, '--check', '--role', 'outer']);
    assert.equal(r.code, 0, r.stderr);
    for (const [key, line] of [
      ['target', 3],
      ['sources', 4],
      ['defaults', 5],
    ] as const) {
      assert.match(r.stderr, new RegExp(`notice: .*enclaver\\.yaml:${line}: \`${key}\` is used only by \`enclaver-proxy build\``));
    }
    assert.doesNotMatch(r.stderr, /`signature`/);
  });
});

describe('--check looks at the files the config refers to', () => {
  test('missing TLS files, ciphertext, hosts file, app and a bad key are all reported in one run', async () => {
    const file = writeConfig(
      dir,
      'files.yaml',
      `role: local
outer:
  egress_relay: { hosts_file: no-such-hosts }
  listeners: [{ name: w, address: "tcp://127.0.0.1:18443", cluster: e }]
  clusters: [{ name: e, endpoints: ["vsock://16:8443"] }]
inner:
  app: { command: [no-such-program-xyz, --serve] }
  listeners:
    - name: w
      address: vsock://any:8443
      cluster: app
      tls: { certificate: missing.crt, private_key: { kms_ciphertext: missing.key.kms } }
      max_connections: lots
  clusters: [{ name: app, endpoints: ["tcp://127.0.0.1:8443"] }]
`,
    );
    const r = await runCliToEnd(['--config', file, '--check']);
    assert.equal(r.code, 2, r.stderr);
    const expected = [
      /:3:\d+: outer\.egress_relay\.hosts_file: .*no-such-hosts does not exist/,
      /:12:\d+: inner\.listeners\[0\]\.tls\.certificate: .*missing\.crt does not exist/,
      /:12:\d+: inner\.listeners\[0\]\.tls\.private_key\.kms_ciphertext: .*missing\.key\.kms does not exist/,
      /:7:\d+: inner\.app\.command: app command "no-such-program-xyz" not found on PATH/,
      /:13:\d+: inner\.listeners\[0\]\.max_connections: expected integer/,
    ];
    for (const re of expected) assert.match(r.stderr, re);
  });

  test('a config whose files exist passes', async () => {
    fs.writeFileSync(path.join(dir, 'present.crt'), 'x');
    fs.writeFileSync(path.join(dir, 'present.key'), 'x');
    const file = writeConfig(
      dir,
      'present.yaml',
      `role: inner
app: { command: [node, --version] }
listeners:
  - { name: w, address: "vsock://any:8443", cluster: app, tls: { certificate: present.crt, private_key: present.key } }
clusters: [{ name: app, endpoints: ["tcp://127.0.0.1:8443"] }]
`,
    );
    const r = await runCliToEnd(['--config', file, '--check']);
    assert.equal(r.code, 0, r.stderr);
  });
});
