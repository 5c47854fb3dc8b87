/**
 * Why an attestation document was refused. The code names the failure precisely so that callers
 * (the CLI, the KMS emulator, tests) can act on it without parsing messages.
 */
import { ProxyError } from '../errors/index.js';

export type AttestationFailure =
  | 'malformed'
  | 'unsupported_algorithm'
  | 'bad_signature'
  | 'wrong_root'
  | 'chain_invalid'
  | 'expired'
  | 'not_yet_valid'
  | 'pcr_mismatch'
  | 'pcr_missing'
  | 'nonce_mismatch'
  /** Attested TLS: the document binds no TLS key (no user_data in the expected form). */
  | 'binding_missing'
  /** Attested TLS: the document binds a key other than this TLS connection's (a man in the middle). */
  | 'binding_mismatch'
  /** Attested TLS: no document could be fetched over the connection (status, framing, timeout). */
  | 'fetch_failed';

export class AttestationError extends ProxyError {
  declare readonly code: AttestationFailure;

  constructor(code: AttestationFailure, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
