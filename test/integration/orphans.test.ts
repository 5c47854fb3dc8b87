/**
 * No process outlives the proxy that started it, whatever dies: a SIGKILLed inner (local pair and
 * standalone) takes its app and the app's own fork with it, and a SIGKILLed outer takes the inner
 * and the app. An app given after `--` runs in the caller's working directory.
 *
 * The app (test/fixtures/apps/forking-app.mjs) forks a helper and writes the pids once it listens.
 * Each check waits for a condition (a file, a process gone) with a deadline far above the time it
 * takes, so a loaded machine only makes the test slower. A process gone is the check, not a refused
 * connection on its port: other processes on this machine may take a freed port at any moment.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { FIXTURES } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, tempDir } from '../helpers/process.js';

const dir = tempDir();
const APP = path.join(FIXTURES, 'apps', 'forking-app.mjs');
interface Pids {
  app: number;
  helper: number;
  parent: number;
  cwd: string;
}
const started: number[] = [];
after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Running, as opposed to gone or a zombie (a zombie holds no port and runs no code; reaping it is init's job). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => T | undefined, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readPids(file: string): Pids | undefined {
  try {
    const pids = JSON.parse(fs.readFileSync(file, 'utf8')) as Pids;
    started.push(pids.app, pids.helper);
    return pids;
  } catch {
    return undefined;
  }
}

/** A config for `role` (local or inner) whose app is given after `--`; the CLI runs in `cwd`. */
async function start(role: 'local' | 'inner', name: string) {
  const [admin, innerAdmin] = (await freePorts(2)) as [number, number];
  const caseDir = path.join(dir, name);
  const cwd = path.join(caseDir, 'caller');
  fs.mkdirSync(cwd, { recursive: true });
  const pidFile = path.join(caseDir, 'pids.json');
  const inner = `admin: { address: tcp://127.0.0.1:${innerAdmin} }
  app: { command: [unused], env: { PORT: "0", PID_FILE: ${JSON.stringify(pidFile)} } }
  listeners: []
  clusters: []`;
  const yaml =
    role === 'local'
      ? `role: local\nruntime_dir: ${caseDir}/run\nouter:\n  admin: { address: tcp://127.0.0.1:${admin} }\n  listeners: []\n  clusters: []\ninner:\n  ${inner}\n`
      : `role: inner\n${inner.replace(/^ {2}/gm, '')}\n`;
  const config = path.join(caseDir, 'config.yaml');
  fs.writeFileSync(config, yaml);
  const proc = runCli(['--config', config, '--', process.execPath, APP], {
    cwd,
    env: { ENCLAVER_VSOCK_EMULATION_DIR: path.join(caseDir, 'vsock') },
  });
  started.push(proc.child.pid!);
  fs.mkdirSync(path.join(caseDir, 'vsock'), { recursive: true });
  const pids = await until('the app to listen', () =>
    proc.child.exitCode === null
      ? readPids(pidFile)
      : (() => {
          throw new Error(`CLI exited\n${proc.stdout()}\n${proc.stderr()}`);
        })(),
  );
  started.push(pids.parent);
  return { proc, pids, cwd };
}

describe('no orphans, whatever dies', () => {
  test("local pair: kill -9 of the inner takes the app and its fork; the app ran in the caller's directory", async () => {
    const { proc, pids, cwd } = await start('local', 'local-inner');
    assert.equal(pids.cwd, fs.realpathSync(cwd), 'an app given after -- runs where the CLI was started');
    assert.notEqual(pids.parent, proc.child.pid, "the app is the inner's child, not the outer's");
    process.kill(pids.parent, 'SIGKILL');
    await until('the app and its helper to be gone', () => (!alive(pids.app) && !alive(pids.helper) ? true : undefined));
    await proc.exited;
  });

  test('local pair: kill -9 of the outer takes the inner, the app and its fork', async () => {
    const { proc, pids } = await start('local', 'local-outer');
    proc.child.kill('SIGKILL');
    await until('the inner, the app and its helper to be gone', () =>
      !alive(pids.parent) && !alive(pids.app) && !alive(pids.helper) ? true : undefined,
    );
  });

  test('standalone inner: kill -9 takes the app and its fork', async () => {
    const { proc, pids } = await start('inner', 'inner');
    assert.equal(pids.parent, proc.child.pid);
    proc.child.kill('SIGKILL');
    await until('the app and its helper to be gone', () => (!alive(pids.app) && !alive(pids.helper) ? true : undefined));
  });
});
