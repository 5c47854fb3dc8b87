/**
 * Per-route request metrics of HTTP listeners: a request counter by status class and a latency
 * histogram (time from the request head to the last response byte). Route names, not paths, are
 * the labels: paths are unbounded and would make the series count unbounded too.
 */
import { Counter, Histogram } from 'prom-client';
import { registry } from '../../shared/metrics/registry.js';

const requests = new Counter({
  name: 'enclaver_http_requests_total',
  help: 'HTTP requests answered by an HTTP listener, by listener, route and status class (2xx…5xx).',
  labelNames: ['listener', 'route', 'status'] as const,
  registers: [registry],
});

const duration = new Histogram({
  name: 'enclaver_http_request_duration_seconds',
  help: 'Time from request head to the last response byte, by listener and route.',
  labelNames: ['listener', 'route'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

export interface RouteMetrics {
  observe(route: string, status: number, durationMs: number): void;
}

export function routeMetrics(listener: string, routes: string[]): RouteMetrics {
  // Bound children once per route: the hot path then skips prom-client's label hashing.
  const byRoute = new Map<
    string,
    { duration: ReturnType<typeof duration.labels>; status: Map<string, ReturnType<typeof requests.labels>> }
  >();
  const bind = (route: string) => {
    const entry = { duration: duration.labels({ listener, route }), status: new Map<string, ReturnType<typeof requests.labels>>() };
    byRoute.set(route, entry);
    return entry;
  };
  for (const r of routes) bind(r);
  return {
    observe(route, status, durationMs) {
      const entry = byRoute.get(route) ?? bind(route);
      const cls = `${Math.floor(status / 100)}xx`;
      let counter = entry.status.get(cls);
      if (!counter) {
        counter = requests.labels({ listener, route, status: cls });
        entry.status.set(cls, counter);
      }
      counter.inc();
      entry.duration.observe(durationMs / 1000);
    },
  };
}
