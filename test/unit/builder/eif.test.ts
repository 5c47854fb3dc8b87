/**
 * EIF writer, reader and PCRs, checked against an independent reader (test/helpers), GNU cpio
 * (the ramdisks must unpack with a tool we did not write) and OpenSSL-made signing keys.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { loadBlobs } from '../../../builder/blobs.js';
import { assembleEif } from '../../../builder/eif/assemble.js';
import { crc32Combine } from '../../../builder/eif/crc32.js';
import { encodeMetadata } from '../../../builder/eif/metadata.js';
import { readEif } from '../../../builder/eif/reader.js';
import { openSigner, type EifSigner } from '../../../builder/eif/signature.js';
import { derSignatureToRaw } from '../../../builder/eif/kms-key.js';
import { verifyEifPcrs } from '../../../builder/eif/verify.js';
import { ensureMountPoints, type RootfsEntry } from '../../../builder/ramdisk/app.js';
import { BuildError } from '../../../builder/errors.js';
import { makeStandInBlobs, pseudoRandom, STAND_IN_CMDLINE } from '../../helpers/blobs.js';
import { pcrOf, readEifIndependently } from '../../helpers/eif-independent.js';
import { CLI } from '../../helpers/paths.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'eif-'));
const big = pseudoRandom('app-binary', 5 * 1024 * 1024 + 3);

function rootfs(): RootfsEntry[] {
  const root = { uid: 0, gid: 0 };
  return ensureMountPoints([
    { kind: 'directory', path: 'app', mode: 0o755, ...root },
    { kind: 'file', path: 'app/server', mode: 0o755, size: big.length, data: big, ...root },
    { kind: 'file', path: 'app/hello.txt', mode: 0o640, size: 6, data: Buffer.from('hello\n'), uid: 1000, gid: 1000 },
    { kind: 'directory', path: 'bin', mode: 0o755, ...root },
    { kind: 'symlink', path: 'bin/server', target: '../app/server', ...root },
    {
      kind: 'file',
      path: 'app/streamed.bin',
      mode: 0o644,
      size: 10,
      ...root,
      data: async function* () {
        yield Buffer.from('01234');
        yield Buffer.from('56789');
      },
    },
  ]);
}

async function build(dir: string, opts: { signer?: EifSigner; blobs?: string } = {}) {
  const blobs = loadBlobs(opts.blobs ?? makeStandInBlobs({ dir: path.join(dir, 'blobs') }), 'x86_64');
  const metadata = encodeMetadata({
    imageName: 'test',
    imageVersion: '1',
    toolVersion: '0.0.0',
    kernelInfo: blobs.kernelInfo,
    dockerInfo: null,
    sourceDateEpoch: 0,
  });
  return assembleEif({
    blobs,
    rootfs: rootfs(),
    launch: { argv: ['/app/server', '--port', '8080'], env: ['PATH=/usr/bin:/bin', 'GREETING=hi there'] },
    metadata,
    eifPath: path.join(dir, 'app.eif'),
    ...(opts.signer ? { signing: { kind: 'sign' as const, signer: opts.signer } } : {}),
  });
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

function makeSigningIdentity(dir: string, curve = 'secp384r1') {
  const key = path.join(dir, `${curve}.key`);
  const cert = path.join(dir, `${curve}.crt`);
  openssl('ecparam', '-name', curve, '-genkey', '-noout', '-out', key);
  openssl('req', '-new', '-x509', '-key', key, '-out', cert, '-days', '30', '-subj', '/CN=eif-signer-test');
  return { key, cert };
}

/** The signer `build` makes from a certificate file and a PEM key file. */
const pemSigner = (cert: string, key: string) =>
  openSigner(fs.readFileSync(cert), cert, { kind: 'file', file: key }, (f) => fs.readFileSync(f));

describe('CRC-32 combine', () => {
  it('gives the CRC of the concatenation for any split, including empty and multi-megabyte pieces', () => {
    const data = pseudoRandom('crc', 3 * 1024 * 1024 + 17);
    for (const cut of [0, 1, 4, 1000, 1024 * 1024, data.length - 1, data.length]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      assert.equal(crc32Combine(zlib.crc32(a), zlib.crc32(b), BigInt(b.length)), zlib.crc32(data), `cut at ${cut}`);
    }
  });
});

describe('EIF writer and reader', () => {
  it("writes nitro-cli's layout; an independent reader agrees on the CRC and every PCR", async () => {
    const dir = tmp();
    const result = await build(dir);
    const ind = readEifIndependently(result.eifPath);
    assert.equal(ind.version, 4);
    assert.equal(ind.flags, 0);
    assert.deepEqual(
      ind.sections.map((s) => s.type),
      [1, 2, 5, 3, 3],
      'kernel, cmdline, metadata, bootstrap ramdisk, app ramdisk',
    );
    assert.equal(ind.sections[0]!.offset, 548, 'first section right after the 548-byte header');
    for (let i = 1; i < ind.sections.length; i++) {
      assert.equal(ind.sections[i]!.offset, ind.sections[i - 1]!.offset + 12 + ind.sections[i - 1]!.size, 'sections are contiguous');
    }
    assert.equal(ind.sections[1]!.payload.toString(), STAND_IN_CMDLINE, 'cmdline stored trimmed');
    assert.equal(ind.storedCrc, ind.computedCrc, 'CRC');
    assert.equal(result.crc32, ind.computedCrc);
    assert.deepEqual(result.pcrs, ind.pcrs);
    const kernel = fs.readFileSync(path.join(dir, 'blobs', 'bzImage'));
    assert.equal(result.pcrs.PCR1, pcrOf(kernel, Buffer.from(STAND_IN_CMDLINE), ind.sections[3]!.payload));
    const described = await readEif(result.eifPath);
    assert.deepEqual(described.pcrs, ind.pcrs);
    assert.equal(described.crc.ok, true);
    assert.equal(
      (described.metadata as { BuildMetadata: { BuildTime: string; KernelVersion: string } }).BuildMetadata.BuildTime,
      '1970-01-01T00:00:00.000000+00:00',
    );
    assert.equal(
      (described.metadata as { BuildMetadata: { KernelVersion: string } }).BuildMetadata.KernelVersion,
      '4.14.256-209.484.amzn2',
    );
    const pcrsFile = JSON.parse(fs.readFileSync(result.pcrsPath, 'utf8')) as { Measurements: Record<string, string> };
    assert.equal(pcrsFile.Measurements.PCR0, ind.pcrs.PCR0);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['app.eif', 'app.pcrs.json', 'blobs'], 'no temporary file left');
  });

  it('writes ramdisks GNU cpio unpacks: bootstrap = dev/ init nsm.ko; app = cmd, env, rootfs with modes, owners, links', async () => {
    const dir = tmp();
    const result = await build(dir);
    const ind = readEifIndependently(result.eifPath);
    const list = (payload: Buffer) => spawnSync('cpio', ['-it', '--quiet'], { input: payload }).stdout.toString().trim().split('\n');
    assert.deepEqual(list(ind.sections[3]!.payload), ['dev', 'init', 'nsm.ko']);
    const names = list(ind.sections[4]!.payload);
    assert.deepEqual(names.slice(0, 3), ['cmd', 'env', 'rootfs']);
    for (const mount of ['dev', 'proc', 'run', 'sys', 'tmp', 'var']) assert.ok(names.includes(`rootfs/${mount}`), `mount point ${mount}`);
    const out = path.join(dir, 'unpacked');
    fs.mkdirSync(out);
    const r = spawnSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { input: ind.sections[4]!.payload, cwd: out });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(fs.readFileSync(path.join(out, 'cmd'), 'utf8'), '/app/server\n--port\n8080\n');
    assert.equal(fs.readFileSync(path.join(out, 'env'), 'utf8'), 'PATH=/usr/bin:/bin\nGREETING=hi there\n');
    assert.ok(fs.readFileSync(path.join(out, 'rootfs/app/server')).equals(big));
    assert.equal(fs.readFileSync(path.join(out, 'rootfs/app/streamed.bin'), 'utf8'), '0123456789');
    assert.equal(fs.readlinkSync(path.join(out, 'rootfs/bin/server')), '../app/server');
    assert.equal(fs.statSync(path.join(out, 'rootfs/app/hello.txt')).mode & 0o7777, 0o640);
    const verbose = spawnSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid'], { input: ind.sections[4]!.payload }).stdout.toString();
    assert.match(verbose, /-rw-r-----\s+1 1000\s+1000\s+6 .* rootfs\/app\/hello\.txt/);
    assert.match(verbose, /Jan\s+1\s+1970/, 'fixed mtime');
  });

  it('is byte-identical when built twice in different directories', async () => {
    const a = await build(tmp());
    const b = await build(tmp());
    assert.ok(fs.readFileSync(a.eifPath).equals(fs.readFileSync(b.eifPath)));
  });

  for (const [curve, algorithm] of [
    ['secp384r1', 'ES384'],
    ['prime256v1', 'ES256'],
    ['secp521r1', 'ES512'],
  ] as const) {
    it(`signs with an ECDSA ${curve} key (${algorithm}): PCR8 is the certificate's, the section holds a COSE signature over PCR0`, async () => {
      const dir = tmp();
      const { key, cert } = makeSigningIdentity(dir, curve);
      const result = await build(dir, { signer: await pemSigner(cert, key) });
      const der = new crypto.X509Certificate(fs.readFileSync(cert)).raw;
      assert.equal(result.pcrs.PCR8, pcrOf(der));
      const ind = readEifIndependently(result.eifPath);
      assert.deepEqual(
        ind.sections.map((s) => s.type),
        [1, 2, 5, 3, 3, 4],
      );
      assert.equal(ind.storedCrc, ind.computedCrc);
      assert.equal(ind.pcrs.PCR0, result.pcrs.PCR0, 'the signature section is not measured');
      assert.equal(ind.pcrs.PCR8, result.pcrs.PCR8);
      assert.equal(ind.signature?.certificatePem, fs.readFileSync(cert, 'utf8'));
      assert.equal(ind.signature.algorithm, algorithm);
      assert.equal(ind.signature.signedPcr0, result.pcrs.PCR0);
      assert.equal(ind.signature.valid, true, 'the independent reader verifies the COSE signature');
      const described = await readEif(result.eifPath);
      assert.equal(described.signature?.signatureValid, true);
      assert.equal(described.signature.algorithm, algorithm);
      assert.equal(described.signature.coversThisImage, true);
      assert.equal(described.pcrs.PCR8, result.pcrs.PCR8);
    });
  }

  it('refuses a key on another curve, an RSA key and a key that does not match the certificate, naming the file', async () => {
    const dir = tmp();
    const k1 = makeSigningIdentity(dir, 'secp256k1');
    await assert.rejects(
      pemSigner(k1.cert, k1.key),
      (e: BuildError) => e.code === 'signing_key_invalid' && e.message.includes(k1.cert) && e.message.includes('P-256, P-384 or P-521'),
    );
    const rsaKey = path.join(dir, 'rsa.key');
    openssl('genrsa', '-out', rsaKey, '2048');
    const p384 = makeSigningIdentity(fs.mkdtempSync(path.join(dir, 'p')));
    await assert.rejects(
      pemSigner(p384.cert, rsaKey),
      (e: BuildError) => e.code === 'signing_key_invalid' && e.message.includes(`${rsaKey}: the EIF signing key must be ECDSA`),
    );
    const a = makeSigningIdentity(fs.mkdtempSync(path.join(dir, 'a')));
    const b = makeSigningIdentity(fs.mkdtempSync(path.join(dir, 'b')));
    await assert.rejects(pemSigner(a.cert, b.key), /does not match/);
  });

  it('verifies the signature before writing: a key that signs with other material fails the build, and no EIF is left', async () => {
    const dir = tmp();
    const good = makeSigningIdentity(fs.mkdtempSync(path.join(dir, 'good')));
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const signer = await pemSigner(good.cert, good.key);
    const lying: EifSigner = {
      ...signer,
      key: {
        name: 'lying key',
        algorithm: 'ES384',
        sign: (m) => Promise.resolve(crypto.sign('sha384', m, { key: other, dsaEncoding: 'ieee-p1363' })),
      },
    };
    await assert.rejects(
      build(dir, { signer: lying }),
      (e: BuildError) =>
        e.code === 'signature_invalid' &&
        e.message.includes(`lying key: the signature it made does not verify with the public key of ${good.cert}`),
    );
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.includes('eif')),
      [],
      'no EIF and no temporary file',
    );
  });

  it('turns DER ECDSA signatures (as KMS returns them) into raw r||s for every curve, and refuses malformed ones', () => {
    for (const [curve, half] of [
      ['P-256', 32],
      ['P-384', 48],
      ['P-521', 66],
    ] as const) {
      const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: curve });
      // Enough signatures that short r or s (leading zero bytes) and the 0x00 sign byte both occur.
      for (let i = 0; i < 200; i++) {
        const message = Buffer.from(`message ${i}`);
        const der = crypto.sign('sha256', message, { key: privateKey, dsaEncoding: 'der' });
        const raw = derSignatureToRaw(der, half);
        assert.ok(raw, `${curve}: converted`);
        assert.equal(raw.length, 2 * half);
        assert.ok(crypto.verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw), `${curve}: verifies as r||s`);
      }
    }
    const der = crypto.sign('sha256', Buffer.from('x'), {
      key: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      dsaEncoding: 'der',
    });
    assert.equal(derSignatureToRaw(der.subarray(0, der.length - 1), 32), undefined, 'truncated');
    assert.equal(derSignatureToRaw(Buffer.concat([der, Buffer.from([0])]), 32), undefined, 'trailing byte');
    assert.equal(derSignatureToRaw(der, 16), undefined, 'integers wider than the curve');
    assert.equal(derSignatureToRaw(Buffer.from([0x31, 0x00]), 32), undefined, 'not a SEQUENCE');
  });

  it('names the missing blob', () => {
    const dir = makeStandInBlobs();
    fs.rmSync(path.join(dir, 'nsm.ko'));
    assert.throws(
      () => loadBlobs(dir, 'x86_64'),
      (e: BuildError) => e.code === 'blob_missing' && e.message.includes(path.join(dir, 'nsm.ko')),
    );
    assert.throws(
      () => loadBlobs(dir, 'aarch64'),
      (e: BuildError) => e.message.includes(path.join(dir, 'Image')),
    );
  });
});

describe('verifyEifPcrs', () => {
  it('accepts the PCR file build wrote, names each PCR that differs, and refuses a corrupt EIF', async () => {
    const dir = tmp();
    const result = await build(dir);
    assert.deepEqual(await verifyEifPcrs(result.eifPath, result.pcrsPath), { ok: true });
    const wrong = path.join(dir, 'wrong.json');
    const other = 'ab'.repeat(48);
    fs.writeFileSync(wrong, JSON.stringify({ PCR0: result.pcrs.PCR0, PCR2: other, PCR8: other }));
    const r = await verifyEifPcrs(result.eifPath, wrong);
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.mismatches, [
      { pcr: 'PCR2', expected: other, actual: result.pcrs.PCR2 },
      { pcr: 'PCR8', expected: other, actual: 'absent' },
    ]);
    const bytes = fs.readFileSync(result.eifPath);
    bytes[bytes.length - 1000] = bytes[bytes.length - 1000]! ^ 0xff;
    const corrupt = path.join(dir, 'corrupt.eif');
    fs.writeFileSync(corrupt, bytes);
    await assert.rejects(
      verifyEifPcrs(corrupt, result.pcrsPath),
      (e: BuildError) => e.code === 'eif_crc_mismatch' && e.message.includes(corrupt),
    );
    fs.writeFileSync(corrupt, bytes.subarray(0, bytes.length - 5000));
    await assert.rejects(
      verifyEifPcrs(corrupt, result.pcrsPath),
      (e: BuildError) => e.code === 'eif_invalid' && /truncated/.test(e.message),
    );
  });
});

describe('enclaver-proxy describe-eif and measure', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

  it('describe-eif prints sections, CRC, PCRs, metadata and the signature; exits 1 on a corrupt file', async () => {
    const dir = tmp();
    const { key, cert } = makeSigningIdentity(dir);
    const result = await build(dir, { signer: await pemSigner(cert, key) });
    const text = cli('describe-eif', result.eifPath);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /EIF version 4, x86_64/);
    assert.match(text.stdout, /CRC32 [0-9a-f]{8} ok/);
    assert.match(text.stdout, new RegExp(`PCR8: ${result.pcrs.PCR8}`));
    assert.match(text.stdout, /signature: ES384, valid; signs this PCR0/);
    assert.match(text.stdout, /CN=eif-signer-test/);
    const json = JSON.parse(cli('describe-eif', '--json', result.eifPath).stdout) as {
      Measurements: Record<string, string>;
      Sections: { Type: string }[];
    };
    assert.equal(json.Measurements.PCR2, result.pcrs.PCR2);
    assert.deepEqual(
      json.Sections.map((s) => s.Type),
      ['kernel', 'cmdline', 'metadata', 'ramdisk', 'ramdisk', 'signature'],
    );
    const bytes = fs.readFileSync(result.eifPath);
    bytes[600] = bytes[600]! ^ 1;
    fs.writeFileSync(result.eifPath, bytes);
    const bad = cli('describe-eif', result.eifPath);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /MISMATCH/);
    const measured = cli('measure', result.eifPath);
    assert.equal(measured.status, 1);
    assert.match(measured.stderr, /CRC mismatch/);
  });

  it('measure prints PCRs, JSON and the KMS policy condition', async () => {
    const result = await build(tmp());
    const plain = cli('measure', result.eifPath);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stdout, `PCR0: ${result.pcrs.PCR0}\nPCR1: ${result.pcrs.PCR1}\nPCR2: ${result.pcrs.PCR2}\n`);
    const policy = JSON.parse(cli('measure', '--kms-policy', result.eifPath).stdout) as {
      Condition: { StringEqualsIgnoreCase: Record<string, string> };
    };
    assert.deepEqual(policy.Condition.StringEqualsIgnoreCase, {
      'kms:RecipientAttestation:PCR0': result.pcrs.PCR0,
      'kms:RecipientAttestation:PCR1': result.pcrs.PCR1,
      'kms:RecipientAttestation:PCR2': result.pcrs.PCR2,
    });
    const json = JSON.parse(cli('measure', '--json', result.eifPath).stdout) as { Measurements: Record<string, string> };
    assert.equal(json.Measurements.PCR1, result.pcrs.PCR1);
    assert.equal(cli('measure', path.join(os.tmpdir(), 'no-such.eif')).status, 1);
    assert.equal(cli('measure').status, 2);
  });
});
