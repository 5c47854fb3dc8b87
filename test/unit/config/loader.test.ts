/**
 * Config loading: every broken config is refused with the file, line, YAML path and what was
 * expected; good configs normalize with defaults applied.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigSource } from '../../../shared/config/source.js';
import { loadConfigSource, type LoadOptions } from '../../../shared/config/load.js';
import type { InnerConfig, LocalConfig, OuterConfig } from '../../../shared/config/types.js';
import { ConfigError, formatProblem } from '../../../shared/errors/index.js';

function load(text: string, opts: LoadOptions = {}) {
  return loadConfigSource(ConfigSource.parse('proxy.yaml', text), opts);
}

/** The formatted problems of a config that must be refused. */
function problems(text: string, opts: LoadOptions = {}): string[] {
  try {
    load(text, opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map(formatProblem);
  }
  assert.fail('config was accepted');
}

const GOOD_INNER = `role: inner
listeners:
  - name: web
    address: vsock://any:8443
    proxy_protocol: v2
    cluster: app
clusters:
  - name: app
    endpoints: [tcp://127.0.0.1:8080]
    connect_timeout: 250ms
`;

describe('valid configs', () => {
  test('an inner config normalizes with defaults', () => {
    const c = load(GOOD_INNER) as InnerConfig;
    assert.equal(c.role, 'inner');
    assert.deepEqual(c.admin.address, { kind: 'tcp', host: '127.0.0.1', port: 9901 });
    assert.deepEqual(c.listeners[0]!.address, { kind: 'vsock', cid: 0xffffffff, port: 8443 });
    assert.equal(c.listeners[0]!.expectProxyProtocol, true);
    assert.equal(c.listeners[0]!.maxConnections, 10000);
    assert.equal(c.listeners[0]!.idleTimeoutMs, 3_600_000);
    assert.equal(c.clusters.get('app')!.connectTimeoutMs, 250);
    assert.equal(c.shutdown.drainTimeoutMs, 15_000);
  });

  test('the outer admin defaults to 9902 and admin: null disables it', () => {
    assert.deepEqual((load('role: outer\n') as OuterConfig).admin.address, { kind: 'tcp', host: '127.0.0.1', port: 9902 });
    assert.equal((load('role: outer\nadmin: { address: null }\n') as OuterConfig).admin.address, null);
  });

  test('a string app command runs through /bin/sh -c', () => {
    const c = load('role: inner\napp: { command: "exec node app.js" }\n') as InnerConfig;
    assert.deepEqual(c.app!.argv, ['/bin/sh', '-c', 'exec node app.js']);
  });

  test('an app command after -- replaces the configured one', () => {
    const c = load(GOOD_INNER, { appArgv: ['python3', '-m', 'http.server'] }) as InnerConfig;
    assert.deepEqual(c.app!.argv, ['python3', '-m', 'http.server']);
  });
});

describe('refused configs name file, line, path and expectation', () => {
  const cases: [string, string, RegExp][] = [
    ['broken YAML', 'role: inner\nlisteners: [\n  - name: x\n', /^proxy\.yaml:\d+:\d+: \(top level\): YAML syntax: /],
    ['duplicate YAML key', 'role: inner\nrole: outer\n', /^proxy\.yaml:2:\d+: \(top level\): YAML syntax: Map keys must be unique/],
    ['empty file', '', /^proxy\.yaml:1: \(top level\): the config is empty/],
    ['a list at the top', '- a\n- b\n', /expected a mapping/],
    ['missing role', 'listeners: []\n', /^proxy\.yaml:1:1: \(top level\): missing required key "role"$/],
    ['unknown role', 'role: middle\n', /^proxy\.yaml:1:7: role: expected one of: "inner", "outer", "local"; got string "middle"$/],
    [
      'unknown top-level key',
      'role: inner\nlisteners: []\nlistner: []\n',
      /^proxy\.yaml:3:1: listner: unknown key "listner" \(expected one of: .*listeners.*\)$/,
    ],
    [
      'unknown listener key',
      `${GOOD_INNER.replace('    cluster: app\n', '    cluster: app\n    clustre: app\n')}`,
      /^proxy\.yaml:7:5: listeners\[0\]\.clustre: unknown key "clustre"/,
    ],
    [
      'wrong type',
      'role: inner\nlisteners:\n  - name: web\n    address: 8080\n    cluster: app\n',
      /^proxy\.yaml:4:14: listeners\[0\]\.address: expected string, got number 8080$/,
    ],
    [
      'bad duration',
      GOOD_INNER.replace('250ms', '5 seconds'),
      /^proxy\.yaml:10:22: clusters\[0\]\.connect_timeout: "5 seconds" is not a duration/,
    ],
    [
      'bad address scheme',
      GOOD_INNER.replace('tcp://127.0.0.1:8080', 'http://127.0.0.1:8080'),
      /^proxy\.yaml:9:17: clusters\[0\]\.endpoints\[0\]: unknown scheme "http" \(tcp, unix or vsock\)$/,
    ],
    [
      'TCP port out of range',
      GOOD_INNER.replace('tcp://127.0.0.1:8080', 'tcp://127.0.0.1:70000'),
      /clusters\[0\]\.endpoints\[0\]: TCP port 70000 is out of range/,
    ],
    ['relative unix path', GOOD_INNER.replace('tcp://127.0.0.1:8080', 'unix://run/app.sock'), /expected an absolute path/],
    [
      'unknown CID name',
      GOOD_INNER.replace('vsock://any:8443', 'vsock://enclave:8443'),
      /^proxy\.yaml:4:14: listeners\[0\]\.address: unknown CID name "enclave"/,
    ],
    [
      'reserved vsock port on a listener',
      GOOD_INNER.replace('vsock://any:8443', 'vsock://any:17002'),
      /^proxy\.yaml:4:14: listeners\[0\]\.address: vsock port 17002 is reserved for the pair's own channels \(17000-17009\)/,
    ],
    [
      'reserved vsock port on a cluster',
      'role: outer\nclusters:\n  - name: e\n    endpoints: [vsock://16:17005]\n',
      /clusters\[0\]\.endpoints\[0\]: vsock port 17005 is reserved/,
    ],
    [
      'unknown cluster',
      GOOD_INNER.replace('cluster: app', 'cluster: ap'),
      /^proxy\.yaml:6:14: listeners\[0\]\.cluster: unknown cluster "ap" \(defined: app\)$/,
    ],
    [
      'listener without a kind',
      'role: inner\nlisteners:\n  - name: web\n    address: tcp://127.0.0.1:1\n',
      /^proxy\.yaml:3:5: listeners\[0\]: a listener needs a kind/,
    ],
    [
      'duplicate listener names',
      `${GOOD_INNER}`.replace('clusters:', '  - name: web\n    address: vsock://any:8444\n    cluster: app\nclusters:'),
      /listeners\[1\]\.name: duplicate listener name "web"/,
    ],
    [
      'two listeners on one address',
      `${GOOD_INNER}`.replace('clusters:', '  - name: web2\n    address: vsock://any:8443\n    cluster: app\nclusters:'),
      /listeners\[1\]\.address: vsock:\/\/any:8443 is already used by listener "web"/,
    ],
    ['app on the outer', 'role: outer\napp: { command: [x] }\n', /^proxy\.yaml:2:6: app: `app` belongs to the inner side/],
    [
      'TLS on the outer',
      'role: outer\nlisteners:\n  - { name: w, address: "tcp://127.0.0.1:1", cluster: c, tls: { certificate: a, private_key: b } }\nclusters: [{ name: c, endpoints: ["vsock://16:1"] }]\n',
      /listeners\[0\]\.tls: TLS is terminated inside the enclave/,
    ],
    [
      'side keys at the top of a local config',
      'role: local\nlisteners: []\nouter: {}\ninner: {}\n',
      /^proxy\.yaml:2:1: listeners: `listeners` belongs inside `outer:` or `inner:` when role is local$/,
    ],
    ['local without inner', 'role: local\nouter: {}\n', /role local needs an `inner:` section/],
    ['outer: in a non-local config', 'role: inner\nouter: {}\n', /`outer` is only allowed when role is local/],
    ['empty endpoints', 'role: inner\nclusters: [{ name: a, endpoints: [] }]\n', /clusters\[0\]\.endpoints: expected at least 1 item/],
    ['--role contradicts the file', 'role: inner\n', /role: --role outer contradicts role: inner in the file/],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => {
      const ps = problems(text, name === '--role contradicts the file' ? { role: 'outer' } : {});
      assert.ok(
        ps.some((p) => expected.test(p)),
        `no problem matched ${expected}:\n${ps.join('\n')}`,
      );
    });
  }

  test('every problem is reported at once', () => {
    const ps = problems(
      'role: inner\nlisteners:\n  - name: a\n    address: bogus\n    cluster: nope\n  - name: b\n    address: vsock://any:17000\n    cluster: nope\n',
    );
    assert.equal(ps.length, 4, ps.join('\n'));
  });

  test('local mode refuses an outer port that collides with the app', () => {
    const ps = problems(`role: local
outer:
  listeners: [{ name: w, address: "tcp://127.0.0.1:8080", cluster: e }]
  clusters: [{ name: e, endpoints: ["vsock://16:8080"] }]
inner:
  listeners: [{ name: w, address: "vsock://any:8080", cluster: app }]
  clusters: [{ name: app, endpoints: ["tcp://127.0.0.1:8080"] }]
`);
    assert.ok(
      ps.some((p) => /^proxy\.yaml:3:\d+: outer\.listeners\[0\]\.address: TCP port 8080 is also where the app listens/.test(p)),
      ps.join('\n'),
    );
  });

  test('local mode refuses two admin endpoints on one port', () => {
    const ps = problems(
      'role: local\nouter: { admin: { address: "tcp://127.0.0.1:9000" } }\ninner: { admin: { address: "tcp://127.0.0.1:9000" } }\n',
    );
    assert.ok(
      ps.some((p) => /inner\.admin\.address: TCP port 9000 is used twice on this machine: outer admin and inner admin/.test(p)),
      ps.join('\n'),
    );
  });
});

describe('local configs', () => {
  test('outer and inner sections become two side configs', () => {
    const c = load(`role: local
outer:
  listeners: [{ name: w, address: "tcp://127.0.0.1:8000", cluster: e }]
  clusters: [{ name: e, endpoints: ["vsock://16:8080"], proxy_protocol: v2 }]
inner:
  listeners: [{ name: w, address: "vsock://any:8080", cluster: app, proxy_protocol: v2 }]
  clusters: [{ name: app, endpoints: ["tcp://127.0.0.1:8080"] }]
`) as LocalConfig;
    assert.equal(c.role, 'local');
    assert.equal(c.outer.role, 'outer');
    assert.equal(c.inner.role, 'inner');
    assert.equal(c.outer.clusters.get('e')!.sendProxyProtocol, true);
    assert.deepEqual(c.outer.admin.address, { kind: 'tcp', host: '127.0.0.1', port: 9902 });
  });
});
