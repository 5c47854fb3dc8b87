/**
 * prom-client, loaded by the parts this project uses: the one module that loads it (eslint
 * refuses value imports of 'prom-client' elsewhere). Its index also loads the push gateway, the
 * cluster aggregator, summaries and the default process metrics with @opentelemetry/api: ~160
 * modules and ~45 ms of CPU at every start, in both processes, none of it needed to accept a
 * connection. The classes come from their own files (prom-client 15 has no `exports` map; a
 * test checks they are the index's classes), and the process metrics are loaded once the
 * listeners are up (./registry.ts).
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

export type { Metric } from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;

/** prom-client's default metrics (process CPU, memory, event loop lag, …), loaded when called. */
export function loadDefaultMetrics(): typeof PromClient.collectDefaultMetrics {
  return require('prom-client/lib/defaultMetrics') as typeof PromClient.collectDefaultMetrics;
}
