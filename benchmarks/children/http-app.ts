/**
 * The small app behind the HTTP benchmarks when nginx is not installed: one Node process answering
 * every request with a short body, keep-alive on. Prints "ready" once listening.
 */
import http from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('hello from the app\n');
const server = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
