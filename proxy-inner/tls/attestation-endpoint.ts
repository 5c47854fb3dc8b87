/**
 * `GET /.well-known/enclave-attestation?nonce=HEX` on an attested TLS listener: a fresh document
 * per request, with the client's nonce and the listener's TLS key binding in `user_data`. The
 * client's nonce makes the answer unreplayable; serving it on the same listener (the same TLS
 * connection, for the verifying client) is what ties it to the key the client is talking to.
 *
 * Each document costs an NSM call (and on the simulator an ES384 signature), so requests are
 * rate-limited per listener with a token bucket; over the limit is 429 with Retry-After.
 */
import { ATTESTATION_WELL_KNOWN_PATH } from '../../shared/attestation/tls-binding.js';
import { messageOf, ProxyError } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import type { LocalAnswer, LocalEndpoint } from '../http-ingress/http-ingress.js';
import type { Nsm } from '../nsm/nsm.js';

const log = logger('attested-tls');
/** Nonces from 8 to 64 bytes: short enough for the NSM (1024), long enough to be unguessable. */
const NONCE_HEX = /^(?:[0-9a-fA-F]{2}){8,64}$/;

export interface AttestationRate {
  /** Documents per second, sustained. */
  perSecond: number;
  burst: number;
}

export const DEFAULT_ATTESTATION_RATE: AttestationRate = { perSecond: 20, burst: 40 };

/** A token bucket refilled by elapsed time (no timer). */
function tokenBucket(rate: AttestationRate, now: () => number): () => boolean {
  let tokens = rate.burst;
  let last = now();
  return () => {
    const t = now();
    tokens = Math.min(rate.burst, tokens + ((t - last) / 1000) * rate.perSecond);
    last = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

function json(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): LocalAnswer {
  return { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, body: JSON.stringify(body) };
}

export interface AttestationEndpointOptions {
  nsm: Pick<Nsm, 'attest'>;
  /** The bound key, as `user_data` (tls-binding.ts). */
  userData: Buffer;
  rate?: AttestationRate;
  now?: () => number;
}

export function attestationEndpoint(opts: AttestationEndpointOptions): LocalEndpoint {
  const take = tokenBucket(opts.rate ?? DEFAULT_ATTESTATION_RATE, opts.now ?? Date.now);
  return {
    path: ATTESTATION_WELL_KNOWN_PATH,
    route: 'attestation',
    answer(method, url) {
      if (method !== 'GET' && method !== 'HEAD')
        return json(405, { error: 'method_not_allowed', message: 'use GET' }, { allow: 'GET, HEAD' });
      const nonce = new URL(url, 'http://x').searchParams.get('nonce');
      if (nonce === null || !NONCE_HEX.test(nonce)) {
        return json(400, {
          error: 'nonce_required',
          message: 'give ?nonce= as 16 to 128 hex digits (8 to 64 random bytes, fresh per request)',
        });
      }
      if (!take()) return json(429, { error: 'rate_limited', message: 'too many attestation requests' }, { 'retry-after': '1' });
      let document: Buffer;
      try {
        document = opts.nsm.attest({ nonce: Buffer.from(nonce, 'hex'), userData: opts.userData });
      } catch (err) {
        log.error({ err: messageOf(err) }, 'attestation for TLS binding failed');
        return json(500, { error: err instanceof ProxyError ? err.code : 'attestation_failed', message: messageOf(err) });
      }
      return {
        status: 200,
        headers: { 'content-type': 'application/cbor', 'cache-control': 'no-store' },
        body: method === 'HEAD' ? Buffer.alloc(0) : document,
      };
    },
  };
}
