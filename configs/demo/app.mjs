// The demo app of `npm start`: a tiny HTTP server that runs "inside the enclave" (as the app
// supervised by the inner proxy) and answers through the ingress path of the local pair.
// GET /fetch?url=… fetches a URL through the egress proxy the inner proxy gave it (HTTPS_PROXY),
// so the allowlist decides and the audit log records it.
import http from 'node:http';
import { EnvHttpProxyAgent, fetch } from 'undici';

const port = Number(process.env.PORT ?? 8080);
const dispatcher = new EnvHttpProxyAgent();

async function fetchThroughEgress(target) {
  try {
    const res = await fetch(target, { dispatcher, signal: AbortSignal.timeout(10_000) });
    const body = await res.text();
    return { url: target, status: res.status, bytes: body.length };
  } catch (err) {
    // undici nests the reason (e.g. "Proxy response (403) !== 200") under its generic message.
    const reasons = [];
    for (let e = err; e; e = e.cause) reasons.push(e.message);
    return { url: target, error: reasons.join(': ') };
  }
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://demo');
  const body = url.pathname === '/fetch' && url.searchParams.get('url')
    ? await fetchThroughEgress(url.searchParams.get('url'))
    : { message: 'Hello from inside the enclave', method: req.method, path: req.url, egress_proxy: process.env.HTTPS_PROXY ?? null };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
});
server.listen(port, '127.0.0.1', () => console.log(`demo app listening on 127.0.0.1:${port}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
