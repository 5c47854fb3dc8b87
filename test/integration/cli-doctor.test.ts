/** `enclaver-proxy doctor` through the real CLI binary. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAddonStatus } from '../../shared/native/addon.js';

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

  it(
    '--json says, per transport, whether the native pump spliced or copied a real connection',
    { skip: nativeAddonStatus().loaded ? false : 'native addon unavailable' },
    () => {
      const r = run(['doctor', '--json'], { ENCLAVER_VSOCK_EMULATION_DIR: '' });
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout) as {
        spliceByTransport: Record<string, { result: string; path?: string; bytes?: number; reason?: string }>;
      };
      for (const t of ['tcp', 'unix'])
        assert.deepEqual(report.spliceByTransport[t], { result: 'checked', path: 'splice', bytes: 512 * 1024 }, t);
      // Real vsock only over a loopback transport (the QEMU guest checks it); never by dialling the host.
      const vsock = report.spliceByTransport.vsock!;
      assert.ok(vsock.result === 'not_checked' ? /loopback/.test(vsock.reason!) : vsock.path === 'splice', JSON.stringify(vsock));
      const text = run(['doctor'], { ENCLAVER_VSOCK_EMULATION_DIR: '' });
      assert.match(text.stdout, /^splice on tcp\s+spliced$/m);
      assert.match(text.stdout, /^splice on unix\s+spliced$/m);
    },
  );

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
