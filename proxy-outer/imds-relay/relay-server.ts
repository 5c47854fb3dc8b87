/**
 * The outer end of the IMDS relay: answers ImdsRequest frames arriving over vsock with what the
 * parent's IMDSv2 says for the same path. Paths outside the relayed set are refused here too,
 * so a compromised enclave still cannot read the rest of the instance's metadata.
 */
import type net from 'node:net';
import { type Address, type Listening, listen } from '../../shared/transport/index.js';
import { FrameDecoder, FrameError, FrameType, encodeFrame } from '../../shared/wire/frame.js';
import { type ImdsRelayResponse, isRelayedImdsPath, parseImdsRelayRequest } from '../../shared/wire/imds-relay.js';
import { messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import type { Imdsv2Client } from './imdsv2-client.js';

const log = logger('imds-relay');

export interface ImdsRelayOptions {
  address: Address;
  client: Pick<Imdsv2Client, 'get'>;
}

async function answer(client: Pick<Imdsv2Client, 'get'>, id: number, path: string): Promise<ImdsRelayResponse> {
  if (!isRelayedImdsPath(path)) {
    log.warn({ path }, 'IMDS path refused: not one the relay serves');
    return { id, status: 403, body: 'path not relayed', content_type: 'text/plain' };
  }
  try {
    const res = await client.get(path);
    return { id, status: res.status, body: res.body, ...(res.contentType ? { content_type: res.contentType } : {}) };
  } catch (err) {
    log.error({ path, err: messageOf(err) }, 'IMDS request failed');
    return { id, status: 502, body: messageOf(err), content_type: 'text/plain' };
  }
}

function serve(socket: net.Socket, client: Pick<Imdsv2Client, 'get'>): void {
  const decoder = new FrameDecoder();
  socket.on('error', (err) => log.debug({ err: messageOf(err) }, 'IMDS relay connection error'));
  socket.on('end', () => socket.end());
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of decoder.push(chunk)) {
        if (frame.type !== FrameType.ImdsRequest)
          throw new FrameError('frame_unexpected', `unexpected frame type ${frame.type} on the IMDS channel`, { type: frame.type });
        const { id, path } = parseImdsRelayRequest(frame.payload);
        void answer(client, id, path).then((res) => {
          if (!socket.destroyed) socket.write(encodeFrame(FrameType.ImdsResponse, { ...res }));
        });
      }
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'malformed IMDS relay frame; closing the connection');
      socket.destroy();
    }
  });
  socket.resume();
}

export function startImdsRelay(opts: ImdsRelayOptions): Promise<Listening> {
  return listen(opts.address, (socket) => serve(socket, opts.client));
}
