/**
 * The benchmark's echo server (a child process, so its CPU and fds are not the runner's):
 * `node echo-server.js PORT`. Prints "ready" once listening on 127.0.0.1:PORT.
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const server = net.createServer({ noDelay: true }, (s) => {
  s.on('data', (d: Buffer) => s.write(d));
  s.on('error', () => {});
});
server.listen({ host: '127.0.0.1', port, backlog: 65535 }, () => process.stdout.write('ready\n'));
