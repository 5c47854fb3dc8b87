/**
 * The upstream of the TLS termination benchmark: `node bulk-upstream.js PORT BYTES`. Each
 * connection reads everything until FIN (discarding it); a connection whose first byte is "B"
 * (bulk) is sent BYTES zero bytes meanwhile; every connection is ended after the client's FIN.
 * Prints "ready" once listening on 127.0.0.1:PORT.
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const bytes = Number(process.argv[3]);
const chunk = Buffer.alloc(256 * 1024);
const server = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => {});
  let left = 0;
  let sending = false;
  const endWhenDone = (): void => {
    if (s.readableEnded && left === 0) s.end();
  };
  const send = (): void => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!s.write(piece)) return void s.once('drain', send);
    }
    endWhenDone();
  };
  s.once('data', (first: Buffer) => {
    if (first[0] !== 0x42 || sending) return;
    sending = true;
    left = bytes;
    send();
  });
  s.once('end', endWhenDone);
  s.resume();
});
server.listen({ host: '127.0.0.1', port, backlog: 65535 }, () => process.stdout.write('ready\n'));
