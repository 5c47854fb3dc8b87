/**
 * The inner end of the IMDS relay: one vsock connection per request carrying one ImdsRequest
 * frame and its ImdsResponse. Requests are rare (credential refreshes, a region lookup), so a
 * connection each keeps failure handling trivial and nothing open between them.
 */
import { type Address, connect } from '../../shared/transport/index.js';
import { FrameError, FrameType, encodeFrame, parseFrame } from '../../shared/wire/frame.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import { type ImdsRelayResponse, parseImdsRelayResponse } from '../../shared/wire/imds-relay.js';

export interface ImdsRelayClientOptions {
  /** The outer relay, vsock://parent:17004 in production. */
  address: Address;
  timeoutMs?: number;
}

export interface ImdsSource {
  get(path: string): Promise<ImdsRelayResponse>;
}

export class ImdsRelayClient implements ImdsSource {
  private nextId = 1;
  private readonly timeoutMs: number;

  constructor(private readonly opts: ImdsRelayClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  async get(path: string): Promise<ImdsRelayResponse> {
    const id = this.nextId++;
    const socket = await connect(this.opts.address, { timeoutMs: this.timeoutMs });
    try {
      socket.write(encodeFrame(FrameType.ImdsRequest, { id, path }));
      const { value: frame } = await readPrefix(socket, parseFrame, {
        timeoutMs: this.timeoutMs,
        maxBytes: 512 * 1024,
        what: 'IMDS response frame',
      });
      if (frame.type !== FrameType.ImdsResponse)
        throw new FrameError('frame_unexpected', `expected an ImdsResponse frame, got type ${frame.type}`, { type: frame.type });
      const res = parseImdsRelayResponse(frame.payload);
      if (res.id !== id)
        throw new FrameError('imds_response_mismatch', `ImdsResponse ${res.id} answers another request than ${id}`, { id, got: res.id });
      return res;
    } finally {
      socket.destroy();
    }
  }
}
