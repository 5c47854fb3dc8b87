/**
 * The outer as the enclave's supervisor, end to end with a nitro-cli test double
 * (test/fixtures/nitro-cli-double/nitro-cli, found on PATH like the real one) that starts the inner
 * proxy as a process under vsock emulation: launch with the documented arguments, the inner's
 * status, the console in debug mode, describe-enclaves, terminate-enclave on stop, the app's exit
 * code as the outer's, and each nitro-cli failure as one message with its fix.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { CLI, FIXTURES } from '../helpers/paths.js';
import { runCli, tempDir, type Proc } from '../helpers/process.js';

const DOUBLE_DIR = path.join(FIXTURES, 'nitro-cli-double');
const ENCLAVE_CID = 16;

interface Setup {
  dir: string;
  stateDir: string;
  outerConfig: string;
  env: Record<string, string>;
}

/** An outer that launches `app` (argv) in an "enclave" made by the double. */
function setup(opts: {
  app: string[];
  appEnv?: Record<string, string>;
  enclave?: Record<string, unknown>;
  fail?: string;
  eifBytes?: number;
}): Setup {
  const dir = tempDir('supervisor-');
  const vsockDir = path.join(dir, 'vsock');
  const stateDir = path.join(dir, 'nitro');
  fs.mkdirSync(vsockDir);
  const eif = path.join(dir, 'app.eif');
  fs.writeFileSync(eif, 'not a real EIF: the double does not boot it');
  if (opts.eifBytes) fs.truncateSync(eif, opts.eifBytes);
  const innerConfig = path.join(dir, 'inner.yaml');
  fs.writeFileSync(
    innerConfig,
    stringify({
      role: 'inner',
      admin: { address: null },
      vsock: { emulation_dir: vsockDir },
      app: { command: opts.app, env: opts.appEnv ?? {} },
      listeners: [],
    }),
  );
  const outerConfig = path.join(dir, 'outer.yaml');
  fs.writeFileSync(
    outerConfig,
    stringify({
      role: 'outer',
      admin: { address: null },
      vsock: { emulation_dir: vsockDir },
      enclave: { cid: ENCLAVE_CID, eif, cpu_count: 2, memory_mib: 512, watch_interval: '100ms', ...opts.enclave },
      listeners: [],
    }),
  );
  return {
    dir,
    stateDir,
    outerConfig,
    env: {
      PATH: `${DOUBLE_DIR}:${process.env.PATH ?? ''}`,
      NITRO_CLI_DOUBLE_STATE: stateDir,
      NITRO_CLI_DOUBLE_INNER: JSON.stringify([process.execPath, CLI, '--config', innerConfig]),
      NITRO_CLI_DOUBLE_FAIL: opts.fail ?? '',
      ENCLAVER_LAUNCH_LOCK: path.join(dir, 'launch.lock'),
    },
  };
}

/** Every nitro-cli command the double received, in order. */
function calls(s: Setup): string[][] {
  const file = path.join(s.stateDir, 'calls.log');
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[])
    : [];
}

/**
 * Resolves once the double has logged a call matching `pred`. The outer says nothing when it asks
 * describe-enclaves, so this watches the double's state directory rather than the outer's output.
 */
function waitForCall(s: Setup, pred: (call: string[]) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = fs.watch(s.stateDir);
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}: ${JSON.stringify(calls(s))}`)), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (calls(s).some(pred)) finish();
    };
    watcher.on('change', check); // every event of the directory: calls.log appended or created
    check();
  });
}

const started: Proc[] = [];
const dirs: string[] = [];
function outer(s: Setup): Proc {
  dirs.push(s.dir);
  const p = runCli(['--config', s.outerConfig], { env: s.env });
  started.push(p);
  return p;
}

/** Terminates, through the double, every enclave a test left running (an outer killed mid-test). */
function terminateLeftovers(dir: string): void {
  const env = { ...process.env, NITRO_CLI_DOUBLE_STATE: path.join(dir, 'nitro') };
  const listed = spawnSync(path.join(DOUBLE_DIR, 'nitro-cli'), ['describe-enclaves'], { env, encoding: 'utf8' });
  for (const e of JSON.parse(listed.stdout || '[]') as { EnclaveID: string }[]) {
    spawnSync(path.join(DOUBLE_DIR, 'nitro-cli'), ['terminate-enclave', '--enclave-id', e.EnclaveID], { env });
  }
}

after(async () => {
  for (const p of started) await p.stop('SIGKILL');
  for (const d of dirs) {
    terminateLeftovers(d);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

describe('enclave supervisor (outer + nitro-cli test double)', { timeout: 180_000 }, () => {
  it('launches, waits for the inner, streams the console, and terminates the enclave on SIGTERM', async () => {
    const s = setup({
      app: [process.execPath, path.join(FIXTURES, 'apps/hash-app.mjs')],
      appEnv: { PORT: '0' },
      enclave: { debug_mode: true },
    });
    const p = outer(s);
    const launched = await p.waitFor((r) => r.msg === 'enclave started', 60_000, 'enclave started');
    assert.match(String(launched.enclave_id), /^i-[0-9a-f]+-enc[0-9a-f]+$/);
    assert.equal(launched.enclave_cid, ENCLAVE_CID);
    assert.deepEqual(calls(s)[0], [
      'run-enclave',
      '--eif-path',
      path.join(s.dir, 'app.eif'),
      '--cpu-count',
      '2',
      '--memory',
      '512',
      '--enclave-cid',
      String(ENCLAVE_CID),
      '--debug-mode',
    ]);
    await p.waitFor((r) => r.msg === 'enclave running', 60_000, 'the inner reporting its app running');
    // The app's own stdout, through the enclave's console (debug mode), in the outer's log.
    await p.waitFor((r) => r.msg === 'console' && /hash-app listening/.test(String(r.line)), 60_000, "the app's line on the console");
    await waitForCall(s, (c) => c[0] === 'describe-enclaves', 'a describe-enclaves watch');
    const { code } = await p.stop('SIGTERM');
    assert.equal(code, 0);
    const id = String(launched.enclave_id);
    assert.ok(
      calls(s).some((c) => c[0] === 'terminate-enclave' && c[2] === id),
      JSON.stringify(calls(s)),
    );
    assert.ok(p.records().some((r) => r.msg === 'enclave terminated' && r.enclave_id === id));
  });

  it("exits with the app's exit code when the app in the enclave ends", async () => {
    const s = setup({ app: [process.execPath, path.join(FIXTURES, 'apps/hash-app.mjs')], appEnv: { EXIT_CODE: '7' } });
    const p = outer(s);
    const { code } = await p.exited;
    assert.equal(code, 7, p.stdout());
    assert.ok(!calls(s).some((c) => c[0] === 'console'), 'no console outside debug mode');
  });

  const failures: { name: string; fail?: string; eifBytes?: number; memory?: number; kind: string; says: RegExp[] }[] = [
    {
      name: 'no /dev/nitro_enclaves (E19)',
      fail: 'E19-device',
      kind: 'nitro_cli_no_device',
      says: [/\[ E19 \]/, /--enclave-options Enabled=true/, /usermod -aG ne/],
    },
    {
      name: 'CPU pool too small (E22)',
      fail: 'E22',
      kind: 'nitro_cli_not_enough_cpus',
      says: [
        /\[ E22 \]/,
        /set `cpu_count: 2` \(or more\) in \/etc\/nitro_enclaves\/allocator\.yaml/,
        /systemctl restart nitro-enclaves-allocator\.service/,
      ],
    },
    {
      name: 'hugepages too small or allocator not configured (E27)',
      fail: 'E27',
      kind: 'nitro_cli_not_enough_memory',
      says: [/\[ E27 \]/, /set `memory_mib: 512` \(or more\) in \/etc\/nitro_enclaves\/allocator\.yaml/],
    },
    {
      name: "memory below the EIF's size (E26)",
      eifBytes: 600 * 1024 * 1024,
      kind: 'nitro_cli_memory_below_eif',
      says: [/\[ E26 \]/, /minimum memory should be 600 MB/, /raise enclave\.memory_mib/],
    },
    { name: 'enclave boot failure (E36)', fail: 'E36', kind: 'nitro_cli_boot_failed', says: [/\[ E36 \]/, /debug_mode: true/] },
  ];
  for (const f of failures) {
    it(`nitro-cli failure: ${f.name} is one clear message with the fix, and exit 1`, async () => {
      const s = setup({ app: ['true'], ...(f.fail ? { fail: f.fail } : {}), ...(f.eifBytes ? { eifBytes: f.eifBytes } : {}) });
      const p = outer(s);
      const { code } = await p.exited;
      assert.equal(code, 1);
      const fatal = p.records().find((r) => r.msg === 'the enclave could not be started');
      assert.ok(fatal, p.stdout());
      for (const re of f.says) assert.match(String(fatal.err), re);
      assert.ok(!calls(s).some((c) => c[0] === 'terminate-enclave'), 'nothing to terminate');
    });
  }

  it('says how to install nitro-cli when it is not on PATH', async () => {
    const s = setup({ app: ['true'] });
    s.env.PATH = path.dirname(process.execPath);
    const p = outer(s);
    const { code } = await p.exited;
    assert.equal(code, 1);
    const fatal = p.records().find((r) => r.msg === 'the enclave could not be started');
    assert.match(String(fatal?.err), /nitro-cli not found on PATH[\s\S]*install the AWS Nitro Enclaves CLI/);
  });
});
