/**
 * How signed KMS requests leave the enclave: HTTPS to the KMS endpoint, through the inner egress
 * proxy (HTTP CONNECT) when one is configured so that the egress allowlist governs KMS too.
 * The CA is injectable for tests against the emulator's self-signed certificate.
 */
import { Agent, type Dispatcher, ProxyAgent, request } from 'undici';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { clockSkewHint } from '../../shared/util/clock-skew.js';

export interface KmsUpstreamOptions {
  /** The egress proxy, e.g. http://127.0.0.1:10000; direct connection when absent. */
  proxyUrl?: string;
  /** Extra trusted CA (PEM) for the KMS endpoint's certificate; the system roots otherwise. */
  ca?: string;
  timeoutMs?: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export class UpstreamError extends ProxyError {}

export class KmsUpstream {
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;

  constructor(opts: KmsUpstreamOptions = {}) {
    const tls = opts.ca ? { ca: opts.ca } : {};
    this.dispatcher = opts.proxyUrl ? new ProxyAgent({ uri: opts.proxyUrl, requestTls: tls }) : new Agent({ connect: tls });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async post(endpoint: URL, headers: Record<string, string>, body: Buffer): Promise<UpstreamResponse> {
    try {
      const res = await request(endpoint, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.dispatcher,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const flat: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers))
        if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
      return { status: res.statusCode, headers: flat, body: Buffer.from(await res.body.arrayBuffer()) };
    } catch (err) {
      throw new UpstreamError(
        'kms_unreachable',
        `KMS at ${endpoint.origin} could not be reached: ${messageOf(err)}${clockSkewHint(err)}`,
        { endpoint: endpoint.origin },
        { cause: err },
      );
    }
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
