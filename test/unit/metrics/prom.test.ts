/**
 * shared/metrics/prom.ts loads prom-client's classes from their own files (its index costs ~45 ms
 * of start-up): they must be the very classes the index exports, and the process metrics, loaded
 * later, must land in our registry with our prefix and without prom-client's `…_total` gauges.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as prom from '../../../shared/metrics/prom.js';
import { registerProcessMetrics, registry, renderMetrics } from '../../../shared/metrics/registry.js';

test("the classes are prom-client's own", async () => {
  const index = await import('prom-client');
  assert.equal(prom.Registry, index.Registry);
  assert.equal(prom.Counter, index.Counter);
  assert.equal(prom.Gauge, index.Gauge);
  assert.equal(prom.Histogram, index.Histogram);
  assert.equal(prom.loadDefaultMetrics(), index.collectDefaultMetrics);
});

test('process metrics: registered once, in our registry, rendered by the first scrape', async () => {
  const { body, contentType } = await renderMetrics();
  assert.match(contentType, /^text\/plain/);
  assert.match(body, /^enclaver_process_cpu_seconds_total /m);
  assert.match(body, /^enclaver_nodejs_eventloop_lag_seconds /m);
  assert.doesNotMatch(body, /^enclaver_nodejs_active_handles_total /m, "prom-client's gauges named like counters are dropped");
  const count = registry.getMetricsAsArray().length;
  registerProcessMetrics();
  assert.equal(registry.getMetricsAsArray().length, count, 'a second call adds nothing');
});
