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
  | 'nonce_mismatch';

export class AttestationError extends ProxyError {
  declare readonly code: AttestationFailure;

  constructor(code: AttestationFailure, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
