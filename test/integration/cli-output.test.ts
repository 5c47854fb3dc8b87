/**
 * No command's output is cut on a pipe. The reader here is a shell pipeline that reads one byte,
 * then nothing for a second (`cmd | { dd bs=1 count=1; sleep 1; cat; }`), so anything the command
 * leaves queued in Node when it exits is lost, as `enclaver-proxy schema | jq` used to lose the
 * tail past 64 KiB. The expected output is known in full for each command (the schema file, a
 * JSON document that must parse, a usage text that must end as written), so a cut shows. The
 * delay only decides whether the old bug shows; a correct CLI passes however long it takes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { ATTESTATION_USAGE } from '../../bin/cli/attestation-command.js';
import { DOCTOR_USAGE } from '../../bin/cli/doctor-command.js';
import { HELP } from '../../bin/cli/help.js';
import { SCHEMA_FILE } from '../../bin/cli/schema-command.js';
import { CLI, ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/process.js';
import { VECTORS_DIR } from '../helpers/vectors.js';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI with stdout and stderr into slow readers; returns the CLI's exit code and what arrived. */
function throughSlowPipe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const slowReader = '{ dd bs=1 count=1 2>/dev/null; sleep 1; cat; }';
  const script = `"$0" "$@" 2> >(${slowReader} >&2) | ${slowReader}; code=\${PIPESTATUS[0]}; wait; exit $code`;
  const child = spawn('bash', ['-c', script, process.execPath, CLI, ...args], {
    env: { ...process.env, ENCLAVER_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** A usage error that prints more than a pipe holds, on stderr: unknown options are echoed back. */
const longBogusOption = `--${'x'.repeat(100_000)}`;

describe('every command that prints, through a pipe to a slow reader, arrives whole', () => {
  test('schema', async () => {
    const r = await throughSlowPipe(['schema']);
    assert.equal(r.code, 0, r.stderr);
    const expected = fs.readFileSync(path.join(ROOT, SCHEMA_FILE), 'utf8');
    assert.equal(r.stdout.length, expected.length);
    assert.equal(r.stdout, expected);
  });

  test('--check of a config whose normalized form is more than a pipe holds', async () => {
    // 4,000 allow entries: the printed config is well past 64 KiB, so a cut on exit would show.
    const allow = Array.from({ length: 4000 }, (_, i) => `      - host-${i}.example.com:443`).join('\n');
    const config = path.join(dir, 'big.yaml');
    fs.writeFileSync(
      config,
      `role: inner\nlisteners:\n  - name: egress\n    address: tcp://127.0.0.1:10000\n    egress:\n      allow:\n${allow}\n`,
    );
    const r = await throughSlowPipe(['--config', config, '--check']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 65_536, `the output (${r.stdout.length} bytes) is bigger than a pipe buffer`);
    const printed = parse(r.stdout) as { listeners: { egress: { allow: string[] } }[] };
    assert.equal(printed.listeners[0]?.egress.allow.length, 4000);
    assert.equal(printed.listeners[0]?.egress.allow[3999], 'host-3999.example.com:443');
  });

  test('--help, --version --verbose, doctor --help, attestation --help', async () => {
    const [help, version, doctorHelp, attestationHelp] = await Promise.all([
      throughSlowPipe(['--help']),
      throughSlowPipe(['--version', '--verbose']),
      throughSlowPipe(['doctor', '--help']),
      throughSlowPipe(['attestation', '--help']),
    ]);
    assert.deepEqual([help.code, help.stdout], [0, HELP]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^enclaver-proxy \d+\.\d+\.\d+\nnode v\d+.*\npump: .+\n$/);
    assert.deepEqual([doctorHelp.code, doctorHelp.stdout], [0, DOCTOR_USAGE], doctorHelp.stderr);
    assert.deepEqual([attestationHelp.code, attestationHelp.stdout], [0, ATTESTATION_USAGE]);
  });

  test('doctor, doctor --json, attestation verify', async () => {
    const [doctor, doctorJson, verify] = await Promise.all([
      throughSlowPipe(['doctor']),
      throughSlowPipe(['doctor', '--json']),
      throughSlowPipe(['attestation', 'verify', path.join(VECTORS_DIR, 'attestation', 'prod-2022.cbor')]),
    ]);
    assert.equal(doctor.code, 0, doctor.stderr);
    assert.match(doctor.stdout, /\n$/);
    assert.equal(doctorJson.code, 0, doctorJson.stderr);
    assert.equal(typeof JSON.parse(doctorJson.stdout), 'object');
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal((JSON.parse(verify.stdout) as { verified: boolean }).verified, true);
  });

  test('--check prints the normalized config; a config error and a usage error reach stderr whole', async () => {
    const config = path.join(dir, 'bad.yaml');
    fs.writeFileSync(config, 'role: inner\nlisteners: 7\n');
    const [check, bad, usage] = await Promise.all([
      throughSlowPipe(['--config', path.join(ROOT, 'configs/local-demo.yaml'), '--check']),
      throughSlowPipe(['--config', config]),
      throughSlowPipe([longBogusOption]),
    ]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal((parse(check.stdout) as { role: string }).role, 'local');
    assert.match(check.stderr, /config OK\n$/);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^enclaver-proxy: invalid config\n.*bad\.yaml:2:\d+: listeners: /s);
    assert.equal(usage.code, 2);
    assert.ok(usage.stderr.includes(longBogusOption), 'the whole option is echoed');
    assert.match(usage.stderr, /Try 'enclaver-proxy --help'\.\n$/);
  });
});
