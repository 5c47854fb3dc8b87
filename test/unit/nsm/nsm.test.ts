import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AttestationError } from '../../../shared/attestation/errors.js';
import { verifyAttestation } from '../../../shared/attestation/verify.js';
import { decodeNsmRequest, encodeNsmRequest, encodeNsmResponse, NsmError } from '../../../proxy-inner/nsm/codec.js';
import { NsmDevice } from '../../../proxy-inner/nsm/device.js';
import { Nsm } from '../../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../../proxy-inner/nsm/simulator.js';

const PCR0 = Buffer.alloc(48, 0xab);

describe('NSM request encoding (aws-nitro-enclaves-nsm-api serde form)', () => {
  it('encodes the all-null Attestation request to the exact published bytes', () => {
    assert.equal(
      encodeNsmRequest({ kind: 'Attestation', userData: null, nonce: null, publicKey: null }).toString('hex'),
      'a16b4174746573746174696f6ea369757365725f64617461f6656e6f6e6365f66a7075626c69635f6b6579f6',
    );
  });

  it('encodes DescribePCR index 0 and the bare GetRandom exactly', () => {
    assert.equal(encodeNsmRequest({ kind: 'DescribePCR', index: 0 }).toString('hex'), 'a16b4465736372696265504352a165696e64657800');
    assert.equal(encodeNsmRequest({ kind: 'GetRandom' }).toString('hex'), '6947657452616e646f6d');
  });

  it('round-trips an Attestation request with byte fields', () => {
    const req = { kind: 'Attestation' as const, userData: Buffer.from('u'), nonce: Buffer.alloc(32, 1), publicKey: null };
    assert.deepEqual(decodeNsmRequest(encodeNsmRequest(req)), req);
  });

  it('refuses a request above the 4 KiB the kernel accepts', () => {
    assert.throws(
      () => encodeNsmRequest({ kind: 'Attestation', userData: Buffer.alloc(5000), nonce: null, publicKey: null }),
      (err: unknown) => err instanceof NsmError && err.code === 'nsm_request_too_large',
    );
  });
});

describe('NSM simulator behind the NSM client', () => {
  const simulator = new NsmSimulator({ pcrs: new Map([[0, PCR0]]) });
  const nsm = new Nsm(simulator);

  it('answers an attestation that verifies against its own root, with the requested fields and PCRs', () => {
    const publicKey = Buffer.from('spki-bytes');
    const nonce = Buffer.alloc(16, 7);
    const { document } = verifyAttestation(nsm.attest({ publicKey, nonce }), {
      root: simulator.rootPem,
      at: 'now',
      expectedPcrs: new Map([
        [0, PCR0],
        [1, Buffer.alloc(48)],
      ]),
      expectedNonce: nonce,
    });
    assert.deepEqual(document.publicKey, publicKey);
    assert.equal(document.userData, null);
    assert.equal(document.pcrs.size, 16);
    assert.equal(nsm.kind, 'simulator');
  });

  it('is refused against the AWS root as wrong_root, never mistaken for a real document', () => {
    assert.throws(
      () => verifyAttestation(nsm.attest(), { at: 'now' }),
      (err: unknown) => err instanceof AttestationError && err.code === 'wrong_root',
    );
  });

  it('describes PCRs (0–15 locked) and refuses an index past 31', () => {
    assert.deepEqual(nsm.describePcr(0), { locked: true, data: PCR0 });
    assert.deepEqual(nsm.describePcr(16), { locked: false, data: Buffer.alloc(48) });
    assert.throws(
      () => nsm.describePcr(40),
      (err: unknown) => err instanceof NsmError && err.code === 'nsm_refused' && err.context.nsmCode === 'InvalidIndex',
    );
  });

  it('returns fresh random bytes', () => {
    const a = nsm.getRandom();
    assert.equal(a.length, 256);
    assert.notDeepEqual(a, nsm.getRandom());
  });

  it('answers an unknown request with the NSM error InvalidOperation', () => {
    assert.equal(
      simulator.exchange(Buffer.from('6b44657363726962654e534d', 'hex')).toString('hex'),
      encodeNsmResponse({ kind: 'Error', error: 'InvalidOperation' }).toString('hex'),
    );
  });

  it('writes its root certificate where configured and refuses a PCR of the wrong size', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsm-sim-'));
    try {
      const rootPath = path.join(dir, 'root.pem');
      const sim = new NsmSimulator({ rootCertificatePath: rootPath });
      assert.equal(fs.readFileSync(rootPath, 'utf8'), sim.rootPem);
      verifyAttestation(new Nsm(sim).attest(), { root: fs.readFileSync(rootPath, 'utf8'), at: 'now' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(
      () => new NsmSimulator({ pcrs: new Map([[0, Buffer.alloc(32)]]) }),
      (err: unknown) => err instanceof NsmError && err.code === 'nsm_config',
    );
  });

  it('renews its three-hour leaf before it expires', () => {
    let now = Date.now();
    const sim = new NsmSimulator({ now: () => now });
    const client = new Nsm(sim);
    const first = verifyAttestation(client.attest(), { root: sim.rootPem, at: new Date(now) }).document.certificate;
    now += 2 * 3600_000 + 55 * 60_000;
    const second = verifyAttestation(client.attest(), { root: sim.rootPem, at: new Date(now) }).document.certificate;
    assert.notDeepEqual(first, second);
  });
});

describe('NSM device transport', () => {
  it('passes the encoded request and the 12 KiB response limit to the addon ioctl on an open fd', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsm-dev-'));
    const fakeDevice = path.join(dir, 'nsm');
    fs.writeFileSync(fakeDevice, '');
    const calls: { fd: number; request: string; max: number }[] = [];
    const device = new NsmDevice((fd, request, max) => {
      calls.push({ fd, request: request.toString('hex'), max });
      return encodeNsmResponse({ kind: 'GetRandom', random: Buffer.alloc(8, 9) });
    }, fakeDevice);
    try {
      assert.deepEqual(new Nsm(device).getRandom(), Buffer.alloc(8, 9));
      assert.equal(calls.length, 1);
      assert.equal(calls[0]!.request, '6947657452616e646f6d');
      assert.equal(calls[0]!.max, 0x3000);
      assert.ok(calls[0]!.fd > 2);
    } finally {
      device.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(
      () => device.exchange(Buffer.alloc(1)),
      (err: unknown) => err instanceof NsmError && err.code === 'nsm_closed',
    );
  });
});
