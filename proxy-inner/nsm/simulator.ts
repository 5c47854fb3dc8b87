/**
 * A stand-in for the Nitro Secure Module off Nitro: it answers the same CBOR messages as
 * /dev/nsm, with PCRs taken from config and documents signed by a throw-away CA generated at
 * startup. Anything that trusts its root must be a test or a developer's own machine.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { signCoseSign1 } from '../../shared/attestation/cose.js';
import { encodeAttestationDocument, MAX_OPTIONAL_FIELD_BYTES } from '../../shared/attestation/document.js';
import { type NsmErrorCode, type NsmRequest, type NsmResponse, NsmError, decodeNsmRequest, encodeNsmResponse } from './codec.js';
import type { NsmTransport } from './nsm.js';
import { type Issued, issueCertificate, toPem } from './throwaway-ca.js';

const PCR_BYTES = 48;
/** Real NSMs have 32 PCRs; 0–15 are locked at boot, the rest are the app's to extend. */
const PCR_COUNT = 32;
const LOCKED_PCRS = 16;
const RANDOM_BYTES = 256;
/** AWS leaves live about three hours; the simulator mimics that so expiry paths get exercised. */
const LEAF_LIFETIME_MS = 3 * 3600_000;
const LEAF_RENEW_BEFORE_MS = 10 * 60_000;
const CLOCK_SKEW_MS = 60_000;

export interface NsmSimulatorOptions {
  /** PCR index → value; indices 0–15 that are not given read as zeros. */
  pcrs?: ReadonlyMap<number, Buffer>;
  moduleId?: string;
  /** The root certificate PEM is written here at startup so that verifiers can pin it. */
  rootCertificatePath?: string;
  now?: () => number;
}

export class NsmSimulator implements NsmTransport {
  readonly kind = 'simulator';
  readonly rootPem: string;
  private readonly pcrs = new Map<number, Buffer>();
  private readonly moduleId: string;
  private readonly now: () => number;
  private readonly root: Issued;
  private readonly intermediate: Issued;
  private leaf: { issued: Issued; validTo: number } | null = null;

  constructor(opts: NsmSimulatorOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.moduleId = opts.moduleId ?? `i-0000000000000000-enc${crypto.randomBytes(8).toString('hex')}`;
    for (let i = 0; i < LOCKED_PCRS; i++) this.pcrs.set(i, Buffer.alloc(PCR_BYTES));
    for (const [index, value] of opts.pcrs ?? []) {
      if (!Number.isInteger(index) || index < 0 || index >= PCR_COUNT)
        throw new NsmError('nsm_config', `simulated PCR index ${index} is out of range 0..${PCR_COUNT - 1}`, { index });
      if (value.length !== PCR_BYTES)
        throw new NsmError('nsm_config', `simulated PCR${index} must be ${PCR_BYTES} bytes (SHA-384), got ${value.length}`, { index });
      this.pcrs.set(index, value);
    }
    const start = new Date(this.now() - CLOCK_SKEW_MS);
    this.root = issueCertificate({
      commonName: 'simulated-nitro-root',
      validFrom: start,
      validTo: new Date(start.getTime() + 10 * 365 * 86400_000),
      pathLen: 1,
    });
    this.intermediate = issueCertificate({
      commonName: 'simulated-nitro-intermediate',
      validFrom: start,
      validTo: new Date(start.getTime() + 30 * 86400_000),
      pathLen: 0,
      issuer: this.root,
    });
    this.rootPem = toPem(this.root.der);
    if (opts.rootCertificatePath) fs.writeFileSync(opts.rootCertificatePath, this.rootPem);
  }

  private currentLeaf(): Issued {
    const now = this.now();
    if (!this.leaf || this.leaf.validTo - now < LEAF_RENEW_BEFORE_MS) {
      const validTo = now + LEAF_LIFETIME_MS;
      this.leaf = {
        issued: issueCertificate({
          commonName: this.moduleId,
          validFrom: new Date(now - CLOCK_SKEW_MS),
          validTo: new Date(validTo),
          issuer: this.intermediate,
        }),
        validTo,
      };
    }
    return this.leaf.issued;
  }

  private answer(req: NsmRequest): NsmResponse {
    switch (req.kind) {
      case 'Attestation': {
        if ([req.userData, req.nonce, req.publicKey].some((v) => v && v.length > MAX_OPTIONAL_FIELD_BYTES)) {
          return { kind: 'Error', error: 'InputTooLarge' satisfies NsmErrorCode };
        }
        const leaf = this.currentLeaf();
        const payload = encodeAttestationDocument({
          moduleId: this.moduleId,
          digest: 'SHA384',
          timestamp: this.now(),
          pcrs: new Map([...this.pcrs].filter(([i]) => i < LOCKED_PCRS)),
          certificate: leaf.der,
          cabundle: [this.root.der, this.intermediate.der],
          publicKey: req.publicKey,
          userData: req.userData,
          nonce: req.nonce,
        });
        return { kind: 'Attestation', document: signCoseSign1(payload, leaf.privateKey) };
      }
      case 'DescribePCR': {
        if (req.index >= PCR_COUNT) return { kind: 'Error', error: 'InvalidIndex' satisfies NsmErrorCode };
        return { kind: 'DescribePCR', lock: req.index < LOCKED_PCRS, data: this.pcrs.get(req.index) ?? Buffer.alloc(PCR_BYTES) };
      }
      case 'GetRandom':
        return { kind: 'GetRandom', random: crypto.randomBytes(RANDOM_BYTES) };
    }
  }

  exchange(request: Buffer): Buffer {
    let req: NsmRequest;
    try {
      req = decodeNsmRequest(request);
    } catch (err) {
      const error: NsmErrorCode = err instanceof NsmError && err.code === 'nsm_unsupported' ? 'InvalidOperation' : 'InvalidArgument';
      return encodeNsmResponse({ kind: 'Error', error });
    }
    return encodeNsmResponse(this.answer(req));
  }

  close(): void {}
}
