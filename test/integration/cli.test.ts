/**
 * The CLI as a user meets it: help, version, schema, --check, and refusals that print a precise
 * message and exit 2 before any socket is opened.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { docsText, schemaText, SCHEMA_FILE, DOCS_FILE } from '../../bin/cli/schema-command.js';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { runCliToEnd, tempDir, writeConfig } from '../helpers/process.js';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('informational commands', () => {
  test('--help prints usage and exits 0', async () => {
    const r = await runCliToEnd(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^enclaver-proxy — /);
    assert.match(r.stdout, /--config FILE/);
    assert.match(r.stdout, /-p, --publish/);
  });

  test('--version prints the package version', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCliToEnd(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `enclaver-proxy ${pkg.version}\n`);
  });

  test('schema prints the JSON Schema that validates configs', async () => {
    const r = await runCliToEnd(['schema']);
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.stdout) as { title: string; properties: Record<string, unknown> };
    assert.equal(schema.title, 'enclaver-proxy configuration');
    assert.ok('listeners' in schema.properties && 'clusters' in schema.properties);
  });

  test('the published schema and docs/config.md are up to date (run `npm run docs`)', () => {
    assert.equal(fs.readFileSync(path.join(ROOT, SCHEMA_FILE), 'utf8'), schemaText(), `${SCHEMA_FILE} is stale: run npm run docs`);
    assert.equal(fs.readFileSync(path.join(ROOT, DOCS_FILE), 'utf8'), docsText(), `${DOCS_FILE} is stale: run npm run docs`);
  });
});

describe('usage errors exit 2 with a message', () => {
  const cases: [string[], RegExp][] = [
    [[], /--config FILE is required/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--config', 'x.yaml', '--role', 'middle'], /--role must be inner, outer or local/],
    [['--config', 'x.yaml', '-p', '80'], /-p 80: expected \[IP:\]HOST_PORT:ENCLAVE_PORT/],
    [['--config', 'x.yaml', '-p', '70000:80'], /port 70000 is out of range/],
    [['--config', 'x.yaml', '--log-level', 'loud'], /--log-level must be one of/],
    [['--config', 'x.yaml', '--'], /nothing after --/],
    [['--config', '/nonexistent/proxy.yaml'], /\/nonexistent\/proxy\.yaml: \(top level\): cannot read config: file not found/],
  ];
  for (const [args, re] of cases) {
    test(args.join(' ') || '(no arguments)', async () => {
      const r = await runCliToEnd(args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, re);
    });
  }
});

describe('--check', () => {
  test('every example in configs/ passes --check', async () => {
    const files = fs.readdirSync(path.join(ROOT, 'configs')).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.length >= 2);
    for (const f of files) {
      const manifest = /enclaver/.test(f);
      const r = await runCliToEnd([
        '--config',
        path.join(ROOT, 'configs', f),
        '--check',
        ...(manifest ? ['--role', 'local', '-p', '18001:8001'] : []),
      ]);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stderr, /config OK/);
      assert.ok(parse(r.stdout), `${f}: --check prints the normalized config`);
    }
  });

  test('a broken config names file, line and path, and no socket is opened', async () => {
    const port = await freePort();
    const file = writeConfig(
      dir,
      'broken.yaml',
      `role: outer
admin: { address: tcp://127.0.0.1:${port} }
listeners:
  - name: web
    address: tcp://127.0.0.1:notaport
    cluster: enclave
clusters:
  - name: enclave
    endpoints: [vsock://16:17001]
`,
    );
    const r = await runCliToEnd(['--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:5:14: listeners\\[0\\]\\.address: expected tcp://HOST:PORT`));
    assert.match(r.stderr, /:9:17: clusters\[0\]\.endpoints\[0\]: vsock port 17001 is reserved/);
    // The admin port was never bound.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        reject(new Error('admin port is listening'));
      });
      s.once('error', () => resolve());
    });
  });
});
