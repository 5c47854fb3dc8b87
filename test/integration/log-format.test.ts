/**
 * Logs as a user reads them. On a terminal (a pty from `script`) every event is one line:
 * `[time] LEVEL side/component: message {fields}`, and the app's own lines appear as it wrote
 * them. Through a pipe the logs are JSON lines and so is the app's output, each of its lines a
 * record of its own, so `| jq` reads the whole stream however the app writes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/process.js';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The app prints a line that is not JSON on each stream, then exits 3 (an error event with fields). */
const APP_SOURCE = 'console.log("plain {text, not json"); console.error("warning: something odd"); process.exitCode = 3;';

async function innerConfig(): Promise<string> {
  const file = path.join(dir, `inner-${await freePort()}.yaml`);
  // Emulated vsock in a directory of its own: the inner's channels (metrics on 17005, …) must not
  // bind this machine's real vsock ports, nor meet another copy of this test.
  const vsockDir = fs.mkdtempSync(path.join(dir, 'vsock-'));
  fs.writeFileSync(
    file,
    `role: inner\nvsock: { emulation_dir: ${vsockDir} }\nadmin: { address: tcp://127.0.0.1:${await freePort()} }\nlisteners: []\nclusters: []\n`,
  );
  return file;
}

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.ENCLAVER_LOG_FORMAT;
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('log output', () => {
  test("on a terminal: one line per event, the app's lines as written", async () => {
    const cli = [process.execPath, CLI, '--config', await innerConfig(), '--', process.execPath, '-e', APP_SOURCE]
      .map(shellQuote)
      .join(' ');
    const r = await run('script', ['-qec', cli, '/dev/null']);
    assert.equal(r.code, 3, r.stdout);
    const lines = r.stdout
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split(/\r?\n/)
      .filter((l) => l !== '');
    const event = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): inner\/[a-z_-]+: \S/;
    const appLines = ['plain {text, not json', 'warning: something odd'];
    for (const line of lines)
      assert.ok(event.test(line) || appLines.includes(line), `not an event line nor the app's: ${JSON.stringify(line)}`);
    for (const line of appLines) assert.ok(lines.includes(line), `the app's line ${line} is printed as written`);
    const exited = lines.find((l) => l.includes('app exited'));
    // "right after starting" depends on how long the app ran (under 1 s), which a loaded machine decides.
    assert.match(exited ?? '', /^\[.*\] ERROR: inner\/inner: app exited( right after starting)? \{"code":3,"signal":null,"ran_ms":\d+\}$/);
    assert.ok(lines.filter((l) => event.test(l)).length >= 4, 'start, app started, app exited, stopped');
  });

  test("through a pipe: every line is JSON, the app's lines included, and jq reads them all", async () => {
    const cli = [process.execPath, CLI, '--config', await innerConfig(), '--', process.execPath, '-e', APP_SOURCE]
      .map(shellQuote)
      .join(' ');
    const r = await run('bash', ['-c', `set -o pipefail; ${cli} | jq -c '{level, side, component, stream, msg}'`]);
    assert.equal(r.code, 3, `the CLI's exit code (3) passes the pipe, jq accepted everything: ${r.stderr}`);
    const records = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string | null>);
    // The two streams are read by two pipes, so only their sets are compared, not their order.
    const appRecords = records.filter((x) => x.component === 'app' && x.stream !== null).sort((a, b) => a.stream!.localeCompare(b.stream!));
    assert.deepEqual(appRecords, [
      { level: 'info', side: 'inner', component: 'app', stream: 'stderr', msg: 'warning: something odd' },
      { level: 'info', side: 'inner', component: 'app', stream: 'stdout', msg: 'plain {text, not json' },
    ]);
    assert.ok(records.some((x) => x.msg === 'inner proxy stopped'));
  });
});
