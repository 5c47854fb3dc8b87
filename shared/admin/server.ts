/**
 * The admin endpoint of each side: `/live` (the process answers), `/ready` (every readiness
 * check passes) and `/metrics` (Prometheus). Loopback by default; it exposes no control action.
 *
 * A scraper needs one or two connections: beyond MAX_ADMIN_CONNECTIONS new ones are closed at
 * accept, and every connection has the HTTP deadlines of shared/listener/http-kind.ts (a
 * half-sent request is closed, not held for ever).
 */
import http from 'node:http';
import type net from 'node:net';
import { DEFAULT_HTTP_DEADLINES, serveHttpConnection, type HttpDeadlines } from '../listener/http-kind.js';
import { logger } from '../log/logger.js';
import { MAX_ADMIN_CONNECTIONS } from './limits.js';
import { renderMetrics } from '../metrics/registry.js';
import { listen, formatAddress, type Address, type Listening } from '../transport/index.js';

const log = logger('admin');

/** Connections held at once by default (`admin.max_connections`); Prometheus keeps one per target. */
export { MAX_ADMIN_CONNECTIONS } from './limits.js';

export type ReadinessCheck = () => { ready: boolean; detail: string };
export type AdminRoute = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

export class AdminServer {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly routes = new Map<string, AdminRoute>();
  private listening: Listening | undefined;
  private readonly open = new Set<net.Socket>();

  constructor(private readonly deadlines: HttpDeadlines = DEFAULT_HTTP_DEADLINES) {}

  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** A read-only GET endpoint a side adds (the outer's /enclave/metrics). */
  addRoute(path: string, route: AdminRoute): void {
    this.routes.set(path, route);
  }

  readiness(): { ready: boolean; checks: Record<string, { ready: boolean; detail: string }> } {
    const checks = Object.fromEntries([...this.checks].map(([name, check]) => [name, check()]));
    return { ready: Object.values(checks).every((c) => c.ready), checks };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/live':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('live\n');
        return;
      case '/ready': {
        const r = this.readiness();
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(r)}\n`);
        return;
      }
      case '/metrics': {
        try {
          const { body, contentType } = await renderMetrics();
          res.writeHead(200, { 'content-type': contentType }).end(body);
        } catch (err) {
          log.error({ err }, 'collecting metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        }
        return;
      }
      default: {
        const route = this.routes.get(path ?? '');
        if (route) {
          await route(req, res);
          return;
        }
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end(`not found: try ${['/live', '/ready', '/metrics', ...this.routes.keys()].join(', ')}\n`);
      }
    }
  }

  /** Listen on `address`, holding at most `maxConnections` connections (`admin.max_connections`). */
  async start(address: Address, maxConnections = MAX_ADMIN_CONNECTIONS): Promise<Listening> {
    this.listening = await listen(
      address,
      (socket: net.Socket) => {
        socket.on('error', () => {});
        this.open.add(socket);
        socket.once('close', () => this.open.delete(socket));
        const server = http.createServer(
          { keepAliveTimeout: this.deadlines.keepAliveMs, requestTimeout: 0 },
          (req, res) => void this.handle(req, res),
        );
        serveHttpConnection(server, socket, this.deadlines);
      },
      {
        maxConnections,
        onDrop: () => log.warn({ limit: maxConnections }, 'admin connection refused: too many open connections (admin.max_connections)'),
      },
    );
    log.info({ address: formatAddress(this.listening.address) }, 'admin endpoint listening');
    return this.listening;
  }

  async close(): Promise<void> {
    const closing = this.listening?.close();
    for (const s of this.open) s.destroy();
    await closing;
  }
}
