/**
 * Which pump a process runs and what `doctor` reports, with the addon and without it
 * (ENCLAVER_NATIVE=0, checked in a fresh process because the choice is made once per process).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { doctorReport, formatDoctorReport } from '../../bin/cli/doctor.js';
import { nativeAddonStatus } from '../../shared/native/addon.js';
import { activePump, describePump } from '../../shared/pump/index.js';

const distShared = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');

/** Runs a module snippet in a fresh node with `env` added; returns its stdout parsed as JSON. */
function inFreshProcess(env: Record<string, string>, body: string): unknown {
  const script = `
    const { describePump, activePump } = await import(${JSON.stringify(path.join(distShared, 'pump', 'index.js'))});
    const { doctorReport } = await import(${JSON.stringify(path.join(distShared, '..', 'bin', 'cli', 'doctor.js'))});
    const transport = await import(${JSON.stringify(path.join(distShared, 'transport', 'index.js'))});
    ${body}`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ENCLAVER_VSOCK_EMULATION_DIR: '', ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

describe('pump selection and doctor', () => {
  it('ENCLAVER_NATIVE=0 selects the JS pump and says why; doctor shows the addon disabled', () => {
    const r = inFreshProcess(
      { ENCLAVER_NATIVE: '0' },
      `
      let vsockError;
      try { await transport.connect(transport.parseAddress('vsock://16:5000'), { timeoutMs: 100 }); }
      catch (err) { vsockError = { code: err.code, errno: err.errno }; }
      const d = doctorReport();
      console.log(JSON.stringify({ kind: activePump().kind, summary: describePump().summary, addon: d.addon, splice: d.splice, vsockError }));
    `,
    ) as {
      kind: string;
      summary: string;
      addon: { loaded: boolean; reason: string };
      splice: unknown;
      vsockError: { code: string; errno: string };
    };
    assert.equal(r.kind, 'js');
    assert.match(r.summary, /JavaScript pump.*ENCLAVER_NATIVE=0/);
    assert.deepEqual({ loaded: r.addon.loaded, reason: r.addon.reason }, { loaded: false, reason: 'disabled' });
    assert.equal(r.splice, null);
    // Real vsock without the addon keeps its clear "not available" error.
    assert.deepEqual(r.vsockError, { code: 'connect_eafnosupport', errno: 'EAFNOSUPPORT' });
  });

  it(
    'with the addon, the native pump is selected and doctor reports splice, pipes and vsock',
    { skip: nativeAddonStatus().loaded ? false : 'native addon unavailable' },
    () => {
      assert.equal(activePump().kind, 'native');
      assert.match(describePump().summary, /native splice pump/);
      const d = doctorReport();
      assert.equal(d.addon.loaded, true);
      assert.equal(d.pump.kind, 'native');
      assert.ok(d.pump.pipeSize! >= 4096);
      assert.ok(d.pump.threads! >= 1);
      assert.deepEqual(d.splice, { supported: true });
      assert.equal(typeof d.vsock.socketSupported, 'boolean');
      assert.ok(d.vsock.localCid !== null || d.vsock.localCidError);
      const text = formatDoctorReport(d);
      for (const label of ['native addon', 'pump', 'splice', 'pipe size', 'pipe-user-pages', 'local CID'])
        assert.match(text, new RegExp(`^${label}\\s`, 'm'));
    },
  );
});
