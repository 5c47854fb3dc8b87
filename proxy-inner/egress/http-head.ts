/**
 * A strict, bounded parser for the first HTTP/1.x request head on the egress port.
 *
 * Why not Node's `http.Server` for this: a CONNECT handshake is one request line and a few
 * headers, and the full server (parser object, IncomingMessage, timers that only `listen()`
 * arms) cost more than the tunnel behind it (issue 13), while giving no deadline at all when
 * sockets are handed to it (issue 9). This reads the head once, within the handshake deadline
 * and a byte limit, refuses everything hardening.md §1e lists (CL+TE, duplicate Content-Length,
 * a Transfer-Encoding other than `chunked`, obs-fold, bare CR or LF, NUL, space before the colon,
 * an oversize head, too many headers, HTTP/2's preface, a lower-case method, bytes that are not
 * HTTP at all), and hands back the raw header pairs in order, never as a keyed object.
 *
 * Absolute-form requests are parsed here too (to find out what they are) and are then given,
 * bytes unchanged, to Node's parser (llhttp), which frames their bodies: chunked bodies are never
 * parsed by hand.
 */
import { ProxyError } from '../../shared/errors/index.js';
import type { PrefixParse } from '../../shared/util/read-prefix.js';
import { headerPairs } from '../../shared/util/header-pairs.js';

/** Request heads beyond this are refused with 431 (Node's own default `maxHeaderSize`). */
export const MAX_HEAD_BYTES = 16 * 1024;

export interface RequestHead {
  method: string;
  /** The request-target as sent: an authority for CONNECT, an absolute URL otherwise. */
  target: string;
  /** Header names and values in the order received, flattened (`name, value, name, value…`). */
  headers: string[];
}

/** 400: not valid HTTP/1.x; 431: the head is too large or has too many headers; 505: not HTTP/1.x. */
export type HeadStatus = 400 | 431 | 505;

/** A request refused while reading its head; `detail` is for logs, never for the client. */
export class HttpProtocolError extends ProxyError {
  constructor(
    readonly status: HeadStatus,
    readonly detail: string,
    readonly method: string | null,
  ) {
    super('http_protocol_error', `HTTP request refused: ${detail}`, { status, detail });
  }
}

const CR = 0x0d;
const LF = 0x0a;
const END = Buffer.from('\r\n\r\n', 'latin1');

/** RFC 9110 §5.6.2 tchar: what a header name may hold. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** RFC 9110 §5.5 field-vchar / SP / HTAB / obs-text: what a header value may hold (no CTL, no NUL). */
const VALUE_CHAR = new Uint8Array(256);
VALUE_CHAR[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VALUE_CHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALUE_CHAR[c] = 1;

function isUpper(c: number | undefined): boolean {
  return c !== undefined && c >= 0x41 && c <= 0x5a;
}

/** The upper-case letters `buf` starts with, up to `limit` bytes: the method, for refusals made before the line is whole. */
function leadingMethod(buf: Buffer, limit: number): string {
  let n = 0;
  while (n < limit && isUpper(buf[n])) n++;
  return buf.toString('latin1', 0, n);
}

/**
 * CR only before LF and LF only after CR, no NUL, anywhere in `buf[0, end)`: a bare CR or LF
 * must be refused as soon as it arrives, not when a blank line that will never come does.
 */
function checkLineEndings(buf: Buffer, end: number, method: string | null): void {
  for (let i = buf.indexOf(LF); i >= 0 && i < end; i = buf.indexOf(LF, i + 1)) {
    if (i === 0 || buf[i - 1] !== CR) throw new HttpProtocolError(400, 'bare LF', method);
  }
  for (let i = buf.indexOf(CR); i >= 0 && i < end; i = buf.indexOf(CR, i + 1)) {
    if (i + 1 < buf.length && buf[i + 1] !== LF) throw new HttpProtocolError(400, 'bare CR', method);
  }
  const nul = buf.indexOf(0);
  if (nul >= 0 && nul < end) throw new HttpProtocolError(400, 'NUL byte', method);
}

function parseRequestLine(line: string): { method: string; target: string } {
  const sp1 = line.indexOf(' ');
  const sp2 = line.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) throw new HttpProtocolError(400, 'malformed request line', sp1 > 0 ? line.slice(0, sp1) : null);
  const method = line.slice(0, sp1);
  if (!/^[A-Z]{1,24}$/.test(method)) throw new HttpProtocolError(400, 'malformed method', method);
  const version = line.slice(sp2 + 1);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') {
    throw new HttpProtocolError(
      /^HTTP\/[0-9]/.test(version) ? 505 : 400,
      `unsupported version ${JSON.stringify(version.slice(0, 16))}`,
      method,
    );
  }
  const target = line.slice(sp1 + 1, sp2);
  if (!/^[\x21-\x7e]+$/.test(target)) throw new HttpProtocolError(400, 'malformed request-target', method);
  return { method, target };
}

/** One `name: value` line, or the refusal it earns; `value` has its optional whitespace trimmed. */
function parseHeaderLine(buf: Buffer, from: number, to: number, method: string): [string, string] {
  const first = buf.readUInt8(from);
  if (first === 0x20 || first === 0x09) throw new HttpProtocolError(400, 'obs-fold (a header line starting with whitespace)', method);
  let i = from;
  while (i < to && TCHAR[buf.readUInt8(i)] === 1) i++;
  if (i === from) throw new HttpProtocolError(400, 'empty or invalid header name', method);
  if (i === to || buf[i] !== 0x3a) {
    throw new HttpProtocolError(400, buf[i] === 0x20 || buf[i] === 0x09 ? 'whitespace before the colon' : 'invalid header name', method);
  }
  const name = buf.toString('latin1', from, i);
  let start = i + 1;
  let end = to;
  while (start < end && (buf[start] === 0x20 || buf[start] === 0x09)) start++;
  while (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0x09)) end--;
  for (let j = start; j < end; j++)
    if (VALUE_CHAR[buf.readUInt8(j)] !== 1) throw new HttpProtocolError(400, 'control character in a header value', method);
  return [name, buf.toString('latin1', start, end)];
}

/** Message framing a proxy must not guess at (RFC 9112 §6.3, hardening.md §1e). */
function checkFraming(headers: string[], method: string): void {
  let lengths = 0;
  let encodings = 0;
  for (const [rawName, value] of headerPairs(headers)) {
    const name = rawName.toLowerCase();
    if (name === 'content-length') {
      lengths++;
      if (!/^[0-9]{1,15}$/.test(value)) throw new HttpProtocolError(400, 'invalid Content-Length', method);
    } else if (name === 'transfer-encoding') {
      encodings++;
      if (value.toLowerCase() !== 'chunked') throw new HttpProtocolError(400, 'Transfer-Encoding other than chunked', method);
    }
  }
  if (lengths > 1) throw new HttpProtocolError(400, 'duplicate Content-Length', method);
  if (encodings > 1) throw new HttpProtocolError(400, 'duplicate Transfer-Encoding', method);
  if (lengths > 0 && encodings > 0) throw new HttpProtocolError(400, 'both Content-Length and Transfer-Encoding', method);
}

/**
 * A PrefixParse for `readPrefix`: `done: false` until the blank line ends the head, then the
 * head and the bytes it took. Throws HttpProtocolError as soon as the bytes so far are refused.
 */
export function parseRequestHead(buf: Buffer, maxHeaders: number): PrefixParse<RequestHead> {
  if (buf.length === 0) return { done: false };
  // A method starts with an upper-case letter: SOCKS4, TLS, a lower-case method and binary
  // garbage are refused at their first byte instead of after the deadline.
  const first = buf.readUInt8(0);
  if (!isUpper(first))
    throw new HttpProtocolError(400, `not an HTTP/1.x request (first byte 0x${first.toString(16).padStart(2, '0')})`, null);
  const endAt = buf.indexOf(END);
  const headEnd = endAt < 0 ? Math.min(buf.length, MAX_HEAD_BYTES) : endAt + 4;
  const lineEnd = buf.indexOf('\r\n', 0, 'latin1');
  const method = lineEnd > 0 ? leadingMethod(buf, Math.min(lineEnd, 32)) : null;
  checkLineEndings(buf, headEnd, method);
  if (endAt < 0) {
    if (buf.length >= MAX_HEAD_BYTES) throw new HttpProtocolError(431, `request head over ${MAX_HEAD_BYTES} bytes`, method);
    return { done: false };
  }
  if (headEnd > MAX_HEAD_BYTES) throw new HttpProtocolError(431, `request head over ${MAX_HEAD_BYTES} bytes`, method);
  const line = parseRequestLine(buf.toString('latin1', 0, lineEnd));
  const headers: string[] = [];
  for (let from = lineEnd + 2; from < endAt + 2;) {
    const to = buf.indexOf('\r\n', from, 'latin1');
    if (headers.length >= maxHeaders * 2) throw new HttpProtocolError(431, `more than ${maxHeaders} header fields`, line.method);
    const [name, value] = parseHeaderLine(buf, from, to, line.method);
    headers.push(name, value);
    from = to + 2;
  }
  checkFraming(headers, line.method);
  return { done: true, value: { method: line.method, target: line.target, headers }, consumed: headEnd };
}

/** Values of one header (case-insensitive name), in order. */
export function headerValues(headers: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (const [headerName, value] of headerPairs(headers)) if (headerName.toLowerCase() === name) out.push(value);
  return out;
}
