/**
 * What crosses vsock port 17004 between the inner IMDS endpoint and the outer IMDSv2 relay
 * (docs/wire-protocol.md): one ImdsRequest frame `{id, path}` answered by one ImdsResponse frame
 * `{id, status, body, content_type?}`. Only the metadata paths AWS SDKs read are relayed; both
 * sides refuse anything else, the outer as defence in depth.
 */
import { FrameError } from './frame.js';

export const IMDS_CREDENTIALS_PATH = '/latest/meta-data/iam/security-credentials/';
export const IMDS_REGION_PATH = '/latest/meta-data/placement/region';
export const IMDS_IDENTITY_DOCUMENT_PATH = '/latest/dynamic/instance-identity/document';
export const IMDS_TOKEN_PATH = '/latest/api/token';

/** An IAM role name: letters, digits and +=,.@_- up to 64 characters. */
const ROLE_NAME = /^[A-Za-z0-9+=,.@_-]{1,64}$/;

export function isRelayedImdsPath(path: string): boolean {
  if (path === IMDS_CREDENTIALS_PATH || path === IMDS_REGION_PATH || path === IMDS_IDENTITY_DOCUMENT_PATH) return true;
  return path.startsWith(IMDS_CREDENTIALS_PATH) && ROLE_NAME.test(path.slice(IMDS_CREDENTIALS_PATH.length));
}

export interface ImdsRelayRequest {
  id: number;
  path: string;
}

export interface ImdsRelayResponse {
  id: number;
  /** The HTTP status IMDS answered, or 403 for a refused path, 502 when IMDS could not be reached. */
  status: number;
  /** IMDS answers text (plain or JSON); never binary. */
  body: string;
  content_type?: string;
}

export function parseImdsRelayRequest(payload: Record<string, unknown>): ImdsRelayRequest {
  const { id, path } = payload;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || typeof path !== 'string')
    throw new FrameError('imds_request_invalid', 'ImdsRequest needs a numeric id and a string path', {});
  return { id, path };
}

export function parseImdsRelayResponse(payload: Record<string, unknown>): ImdsRelayResponse {
  const { id, status, body, content_type } = payload;
  if (
    typeof id !== 'number' ||
    typeof status !== 'number' ||
    typeof body !== 'string' ||
    (content_type !== undefined && typeof content_type !== 'string')
  ) {
    throw new FrameError('imds_response_invalid', 'ImdsResponse needs a numeric id and status and a string body', {});
  }
  return { id, status, body, ...(content_type !== undefined ? { content_type } : {}) };
}
