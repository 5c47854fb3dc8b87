// The demo app of `npm start`: a tiny HTTP server that runs "inside the enclave" (as the app
// supervised by the inner proxy) and answers through the ingress path of the local pair.
import http from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const server = http.createServer((req, res) => {
  const body = {
    message: 'Hello from inside the enclave',
    method: req.method,
    path: req.url,
    egress_proxy: process.env.HTTPS_PROXY ?? null,
  };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
});
server.listen(port, '127.0.0.1', () => console.log(`demo app listening on 127.0.0.1:${port}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
