/**
 * A stand-in for the outer egress relay that speaks the real frames on a Unix socket, so a test
 * can choose each answer (error codes, addresses, bytes behind the answer, a delay).
 */
import net from 'node:net';
import path from 'node:path';
import { encodeEgressAnswer, parseEgressRequest, type EgressAnswer, type EgressRequest } from '../../shared/egress/relay-frames.js';
import { FrameDecoder } from '../../shared/wire/frame.js';

export interface StubAnswer {
  /** null: hang up without answering. */
  answer: EgressAnswer | null;
  /** Destination bytes sent right behind the answer. */
  after?: Buffer;
  delayMs?: number;
  /** After an ok answer, connect to this loopback port and carry the tunnel's bytes to it. */
  pipeTo?: number;
}

export interface RelayStub {
  path: string;
  seen: EgressRequest[];
  /** Connections from the inner, for checking that they were closed. */
  connections: net.Socket[];
  answerWith(fn: (req: EgressRequest) => StubAnswer): void;
  close(): Promise<void>;
}

export async function startRelayStub(dir: string): Promise<RelayStub> {
  let answerFor: (req: EgressRequest) => StubAnswer = () => ({ answer: null });
  const stub: RelayStub = {
    path: path.join(dir, 'relay.sock'),
    seen: [],
    connections: [],
    answerWith(fn) {
      answerFor = fn;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of stub.connections) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((s) => {
    stub.connections.push(s);
    const decoder = new FrameDecoder();
    s.on('error', () => {});
    s.on('data', (c: Buffer) => {
      for (const f of decoder.push(c)) {
        const req = parseEgressRequest(f);
        stub.seen.push(req);
        const { answer, after, delayMs, pipeTo } = answerFor(req);
        const reply = () => {
          if (answer === null) {
            s.destroy();
            return;
          }
          if (pipeTo !== undefined) {
            s.removeAllListeners('data');
            s.pause();
            const up = net.connect(pipeTo, '127.0.0.1', () => {
              s.write(encodeEgressAnswer(answer));
              s.pipe(up).pipe(s);
              s.resume();
            });
            up.on('error', () => s.destroy());
            s.once('close', () => up.destroy());
            return;
          }
          s.write(Buffer.concat([encodeEgressAnswer(answer), after ?? Buffer.alloc(0)]));
          if (!answer.ok) s.end();
        };
        if (delayMs) setTimeout(reply, delayMs);
        else reply();
      }
    });
  });
  await new Promise<void>((r) => server.listen(stub.path, r));
  return stub;
}
