/**
 * The NSM's CBOR request/response messages (aws-nitro-enclaves-nsm-api src/api/mod.rs): serde's
 * externally tagged enums, text field names, None as null. Unit requests are bare text strings.
 * The same codec serves the real device and the simulator, so the simulator exercises it too.
 */
import { cborDecoder, cborEncoder } from '../../shared/attestation/cose.js';
import { ProxyError } from '../../shared/errors/index.js';

export type NsmRequest =
  | { kind: 'Attestation'; userData: Buffer | null; nonce: Buffer | null; publicKey: Buffer | null }
  | { kind: 'DescribePCR'; index: number }
  | { kind: 'GetRandom' };

export type NsmResponse =
  | { kind: 'Attestation'; document: Buffer }
  | { kind: 'DescribePCR'; lock: boolean; data: Buffer }
  | { kind: 'GetRandom'; random: Buffer }
  | { kind: 'Error'; error: string };

/** The NSM answers these codes in `{"Error": code}`. */
export type NsmErrorCode =
  | 'InvalidArgument'
  | 'InvalidIndex'
  | 'InvalidResponse'
  | 'ReadOnlyIndex'
  | 'InvalidOperation'
  | 'BufferTooSmall'
  | 'InputTooLarge'
  | 'InternalError';

export class NsmError extends ProxyError {}

/** The kernel refuses requests above 4 KiB (EMSGSIZE); responses fit in 12 KiB. */
export const NSM_MAX_REQUEST_BYTES = 0x1000;
export const NSM_MAX_RESPONSE_BYTES = 0x3000;

export function encodeNsmRequest(req: NsmRequest): Buffer {
  let value: unknown;
  switch (req.kind) {
    case 'Attestation':
      value = new Map([
        [
          'Attestation',
          new Map<string, Buffer | null>([
            ['user_data', req.userData],
            ['nonce', req.nonce],
            ['public_key', req.publicKey],
          ]),
        ],
      ]);
      break;
    case 'DescribePCR':
      value = new Map([['DescribePCR', new Map([['index', req.index]])]]);
      break;
    case 'GetRandom':
      value = 'GetRandom';
      break;
  }
  const bytes = Buffer.from(cborEncoder.encode(value));
  if (bytes.length > NSM_MAX_REQUEST_BYTES)
    throw new NsmError('nsm_request_too_large', `NSM request of ${bytes.length} bytes exceeds ${NSM_MAX_REQUEST_BYTES}`, {
      kind: req.kind,
      size: bytes.length,
    });
  return bytes;
}

function decodeMessage(bytes: Buffer, what: string): { kind: string; body: unknown } {
  let value: unknown;
  try {
    value = cborDecoder.decode(bytes);
  } catch (err) {
    throw new NsmError('nsm_malformed', `NSM ${what} is not valid CBOR: ${(err as Error).message}`);
  }
  if (typeof value === 'string') return { kind: value, body: undefined };
  if (value instanceof Map && value.size === 1) {
    const [entry] = value.entries();
    if (entry && typeof entry[0] === 'string') return { kind: entry[0], body: entry[1] };
  }
  throw new NsmError('nsm_malformed', `NSM ${what} is neither a bare name nor a one-entry map`);
}

function field<T>(body: unknown, name: string, check: (v: unknown) => v is T, what: string): T {
  const v = body instanceof Map ? body.get(name) : undefined;
  if (!check(v)) throw new NsmError('nsm_malformed', `NSM ${what} has no valid "${name}"`, { field: name });
  return v;
}

const isBuffer = (v: unknown): v is Buffer => Buffer.isBuffer(v);
const isOptionalBuffer = (v: unknown): v is Buffer | null => v === null || Buffer.isBuffer(v);
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isText = (v: unknown): v is string => typeof v === 'string';

export function decodeNsmRequest(bytes: Buffer): NsmRequest {
  const { kind, body } = decodeMessage(bytes, 'request');
  switch (kind) {
    case 'Attestation':
      return {
        kind,
        userData: field(body, 'user_data', isOptionalBuffer, 'Attestation request'),
        nonce: field(body, 'nonce', isOptionalBuffer, 'Attestation request'),
        publicKey: field(body, 'public_key', isOptionalBuffer, 'Attestation request'),
      };
    case 'DescribePCR':
      return { kind, index: field(body, 'index', isIndex, 'DescribePCR request') };
    case 'GetRandom':
      return { kind };
    default:
      throw new NsmError('nsm_unsupported', `NSM request "${kind}" is not supported`, { kind });
  }
}

export function encodeNsmResponse(res: NsmResponse): Buffer {
  switch (res.kind) {
    case 'Attestation':
      return Buffer.from(cborEncoder.encode(new Map([['Attestation', new Map([['document', res.document]])]])));
    case 'DescribePCR':
      return Buffer.from(
        cborEncoder.encode(
          new Map([
            [
              'DescribePCR',
              new Map<string, unknown>([
                ['lock', res.lock],
                ['data', res.data],
              ]),
            ],
          ]),
        ),
      );
    case 'GetRandom':
      return Buffer.from(cborEncoder.encode(new Map([['GetRandom', new Map([['random', res.random]])]])));
    case 'Error':
      return Buffer.from(cborEncoder.encode(new Map([['Error', res.error]])));
  }
}

export function decodeNsmResponse(bytes: Buffer): NsmResponse {
  const { kind, body } = decodeMessage(bytes, 'response');
  switch (kind) {
    case 'Attestation':
      return { kind, document: field(body, 'document', isBuffer, 'Attestation response') };
    case 'DescribePCR':
      return {
        kind,
        lock: field(body, 'lock', isBool, 'DescribePCR response'),
        data: field(body, 'data', isBuffer, 'DescribePCR response'),
      };
    case 'GetRandom':
      return { kind, random: field(body, 'random', isBuffer, 'GetRandom response') };
    case 'Error':
      return { kind, error: isText(body) ? body : 'InvalidResponse' };
    default:
      throw new NsmError('nsm_malformed', `unexpected NSM response "${kind}"`, { kind });
  }
}
