/**
 * Attestation documents for KMS `Recipient`s, binding the recipient key. A document may be
 * reused for a bounded time (config `attestation_reuse`, at most MAX_ATTESTATION_REUSE_MS) instead of asking
 * the NSM on every call; 0 asks every time, as sdk-c and Enclaver do.
 */
// KMS checks documents itself; one older than this limit (the config's) is not worth a refusal.
import { MAX_ATTESTATION_REUSE_MS } from '../../shared/config/listeners.js';
import { ErrorCode, ProxyError } from '../../shared/errors/index.js';
import type { Nsm } from '../nsm/nsm.js';

export interface AttestationSourceOptions {
  nsm: Pick<Nsm, 'attest'>;
  publicKey: Buffer;
  reuseMs: number;
  now?: () => number;
  onReuse?: () => void;
}

export class AttestationSource {
  private cached: { document: Buffer; at: number } | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: AttestationSourceOptions) {
    if (opts.reuseMs < 0 || opts.reuseMs > MAX_ATTESTATION_REUSE_MS)
      throw new ProxyError(ErrorCode.ConfigInvalid, `attestation reuse of ${opts.reuseMs} ms is outside 0..${MAX_ATTESTATION_REUSE_MS}`, {
        reuseMs: opts.reuseMs,
      });
    this.now = opts.now ?? Date.now;
  }

  document(): Buffer {
    const now = this.now();
    if (this.cached && now - this.cached.at < this.opts.reuseMs) {
      this.opts.onReuse?.();
      return this.cached.document;
    }
    const document = this.opts.nsm.attest({ publicKey: this.opts.publicKey });
    this.cached = { document, at: now };
    return document;
  }
}
