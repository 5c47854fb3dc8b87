import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Nsm } from '../../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../../proxy-inner/nsm/simulator.js';
import { VECTORS_DIR, vectorJson } from '../../helpers/vectors.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/enclaver-proxy.js');
const vector = (name: string) => path.join(VECTORS_DIR, 'attestation', name);
const expected = vectorJson<Record<string, { pcr0: string; pcr2: string }>>('attestation/expected.json');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'attestation', 'verify', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('enclaver-proxy attestation verify', () => {
  it('verifies the real documents as of their timestamp, raw CBOR and base64, and prints what they attest', () => {
    const prod = cli(
      vector('prod-2022.cbor'),
      '--pcr',
      `0=${expected['prod-2022.cbor']!.pcr0}`,
      '--pcr',
      `2=${expected['prod-2022.cbor']!.pcr2}`,
    );
    assert.equal(prod.code, 0, prod.stderr);
    const out = JSON.parse(prod.stdout) as { verified: boolean; checked_at: string; pcrs: Record<string, string> };
    assert.equal(out.verified, true);
    assert.equal(out.checked_at, '2022-10-13T08:58:02.136Z');
    assert.equal(out.pcrs['0'], expected['prod-2022.cbor']!.pcr0);
    assert.equal(cli(vector('debug-ga.b64')).code, 0);
  });

  it('names each failure and exits 1: expired, PCR mismatch, nonce, wrong root', () => {
    const expired = cli(vector('prod-2022.cbor'), '--at', 'now');
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /^attestation verify: expired: leaf certificate expired at 2022-10-13T11:58:02\.000Z/);
    const pcr = cli(vector('prod-2022.cbor'), '--pcr', `1=${'00'.repeat(48)}`);
    assert.equal(pcr.code, 1);
    assert.match(pcr.stderr, /pcr_mismatch: PCR1 mismatch/);
    assert.match(cli(vector('debug-2022.cbor'), '--nonce', 'abcd').stderr, /nonce_mismatch/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-cli-'));
    try {
      const sim = new NsmSimulator();
      fs.writeFileSync(path.join(dir, 'root.pem'), sim.rootPem);
      fs.writeFileSync(path.join(dir, 'doc.cbor'), new Nsm(sim).attest());
      const wrong = cli(vector('prod-2022.cbor'), '--root', path.join(dir, 'root.pem'));
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /wrong_root/);
      assert.equal(cli(path.join(dir, 'doc.cbor'), '--root', path.join(dir, 'root.pem'), '--at', 'now').code, 0);
      assert.match(cli(path.join(dir, 'doc.cbor')).stderr, /wrong_root/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers usage errors with exit 2', () => {
    assert.equal(cli().code, 2);
    assert.equal(cli(vector('prod-2022.cbor'), '--pcr', 'x').code, 2);
    assert.equal(cli(vector('prod-2022.cbor'), '--at', 'yesterday').code, 2);
    assert.equal(cli('/nonexistent/file').code, 2);
  });
});
