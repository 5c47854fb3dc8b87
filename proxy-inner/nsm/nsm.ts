/**
 * The Nitro Secure Module as the rest of the inner proxy sees it: one client over a transport
 * that exchanges raw CBOR messages, either the real /dev/nsm or the simulator. Callers never
 * ask which one they have, except to announce it.
 */
import { type NsmRequest, type NsmResponse, NsmError, decodeNsmResponse, encodeNsmRequest } from './codec.js';

export interface NsmTransport {
  readonly kind: 'device' | 'simulator';
  /** One request/response exchange of raw CBOR messages. */
  exchange(request: Buffer): Buffer;
  close(): void;
}

export interface AttestationRequest {
  userData?: Buffer | null;
  nonce?: Buffer | null;
  publicKey?: Buffer | null;
}

export class Nsm {
  constructor(private readonly transport: NsmTransport) {}

  get kind(): 'device' | 'simulator' {
    return this.transport.kind;
  }

  private call<K extends NsmResponse['kind']>(req: NsmRequest, expect: K): Extract<NsmResponse, { kind: K }> {
    const res = decodeNsmResponse(this.transport.exchange(encodeNsmRequest(req)));
    if (res.kind === 'Error')
      throw new NsmError('nsm_refused', `the NSM refused ${req.kind}: ${res.error}`, { request: req.kind, nsmCode: res.error });
    if (res.kind !== expect)
      throw new NsmError('nsm_malformed', `the NSM answered ${res.kind} to ${req.kind}`, { request: req.kind, response: res.kind });
    return res as Extract<NsmResponse, { kind: K }>;
  }

  /** A COSE_Sign1 attestation document binding the given fields. */
  attest(req: AttestationRequest = {}): Buffer {
    return this.call(
      { kind: 'Attestation', userData: req.userData ?? null, nonce: req.nonce ?? null, publicKey: req.publicKey ?? null },
      'Attestation',
    ).document;
  }

  describePcr(index: number): { locked: boolean; data: Buffer } {
    const res = this.call({ kind: 'DescribePCR', index }, 'DescribePCR');
    return { locked: res.lock, data: res.data };
  }

  getRandom(): Buffer {
    return this.call({ kind: 'GetRandom' }, 'GetRandom').random;
  }

  close(): void {
    this.transport.close();
  }
}
