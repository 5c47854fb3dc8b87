/**
 * The builder's one error type. Every failure names the input it is about (a file, an image
 * reference, a layer digest, a path inside a layer) in `context` and in the message, so a user
 * can act on it without reading code; `code` is stable for tests and scripts.
 */
import { ProxyError } from '../shared/errors/index.js';

export type BuildErrorCode =
  | 'blob_missing'
  | 'eif_invalid'
  | 'eif_crc_mismatch'
  | 'pcr_file_invalid'
  | 'signing_key_invalid'
  | 'signature_invalid'
  | 'kms_request_failed'
  | 'kms_client_missing'
  | 'image_not_found'
  | 'image_invalid'
  | 'image_arch_mismatch'
  | 'digest_mismatch'
  | 'layer_path_unsafe'
  | 'layer_invalid'
  | 'archive_truncated'
  | 'registry_unauthorized'
  | 'registry_error'
  | 'manifest_invalid'
  | 'runtime_missing'
  | 'push_failed';

export class BuildError extends ProxyError {
  declare readonly code: BuildErrorCode;

  constructor(code: BuildErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
