/**
 * The inner side of the egress handshake: one new connection to the outer relay per tunnel, one
 * request frame, one answer frame. What comes after the answer is the destination's bytes.
 */
import type net from 'node:net';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { encodeEgressRequest, parseEgressAnswer, type EgressRequest, type RelayErrorCode } from '../../shared/egress/relay-frames.js';
import { connect, type Address } from '../../shared/transport/index.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import { parseFrame } from '../../shared/wire/frame.js';

/** `relay_unavailable`: the outer could not be reached or broke the protocol. */
export type RelayFailure = RelayErrorCode | 'relay_unavailable';

export class RelayError extends ProxyError {
  constructor(
    readonly failure: RelayFailure,
    message: string,
    context: Record<string, unknown> = {},
  ) {
    super(`relay_${failure}`, message, { failure, ...context });
  }
}

export interface RelayTunnel {
  socket: net.Socket;
  /** The outer's connected address as it reported it (validated by the caller). */
  address: string | null;
  /** Destination bytes that arrived right behind the answer (a server that speaks first). */
  headDown: Buffer;
}

/** `timeoutMs` covers reaching the outer and the outer's own resolve + connect. */
export async function dialRelay(relay: Address, timeoutMs: number, request: EgressRequest): Promise<RelayTunnel> {
  const deadline = Date.now() + timeoutMs;
  let socket: net.Socket;
  try {
    socket = await connect(relay, { timeoutMs });
  } catch (err) {
    throw new RelayError('relay_unavailable', `egress relay unreachable: ${messageOf(err)}`);
  }
  socket.write(encodeEgressRequest(request));
  try {
    const { value, rest } = await readPrefix(socket, parseFrame, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      maxBytes: 4096,
      what: 'egress answer frame',
    });
    const answer = parseEgressAnswer(value);
    if (!answer.ok) {
      socket.destroy();
      throw new RelayError(answer.code, answer.message);
    }
    return { socket, address: answer.address, headDown: rest };
  } catch (err) {
    socket.destroy();
    if (err instanceof RelayError) throw err;
    const code = err instanceof ProxyError ? err.code : undefined;
    // No answer in time means the outer's connect did not finish: a gateway timeout, not a refusal.
    if (code === 'prefix_timeout') throw new RelayError('connect_timeout', 'no answer from the egress relay in time');
    throw new RelayError('relay_unavailable', `egress relay broke the handshake: ${messageOf(err)}`);
  }
}
