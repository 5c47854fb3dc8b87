/** `enclaver-proxy doctor` through the real CLI binary. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'enclaver-proxy.js');

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ENCLAVER_LOG_LEVEL: 'silent', ...env } });
}

describe('enclaver-proxy doctor', () => {
  it('prints the data-plane report', () => {
    const r = run(['doctor']);
    assert.equal(r.status, 0, r.stderr);
    for (const label of ['native addon', 'pump', 'splice', 'pipe-max-size', 'pipe-user-pages', 'AF_VSOCK sockets', 'local CID']) {
      assert.match(r.stdout, new RegExp(`^${label}\\s`, 'm'));
    }
  });

  it('--json reports the JS pump and a disabled addon under ENCLAVER_NATIVE=0', () => {
    const r = run(['doctor', '--json'], { ENCLAVER_NATIVE: '0' });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { addon: { loaded: boolean }; pump: { kind: string } };
    assert.equal(report.addon.loaded, false);
    assert.equal(report.pump.kind, 'js');
  });

  it('--version --verbose names the pump', () => {
    const r = run(['--version', '--verbose'], { ENCLAVER_NATIVE: '0' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^pump: JavaScript pump/m);
  });

  it('rejects unknown options with exit 2', () => {
    const r = run(['doctor', '--bogus']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Usage: enclaver-proxy doctor/);
  });
});
