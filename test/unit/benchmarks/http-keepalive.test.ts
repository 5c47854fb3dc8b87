/** Reading wrk's report: req/s, p99 in any unit, and errors (non-2xx and socket errors). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWrk } from '../../../benchmarks/workloads/http-keepalive.js';

const SAMPLE = `Running 4s test @ http://127.0.0.1:18080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.71ms    2.36ms  39.43ms   93.33%
    Req/Sec    10.56k     3.25k   14.28k    65.00%
  Latency Distribution
     50%    1.08ms
     75%    1.64ms
     90%    3.13ms
     99%   12.74ms
  42025 requests in 4.00s, 6.81MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  10502.04
Transfer/sec:      1.70MB
`;

test('wrk output: req/s, p99 in microseconds, total requests and errors', () => {
  assert.deepEqual(parseWrk(SAMPLE), { requestsPerSecond: 10502.04, p99us: 12740, requests: 42025, errors: 7 });
  assert.equal(parseWrk(SAMPLE.replace('12.74ms', '812.00us')).p99us, 812);
  assert.equal(parseWrk(SAMPLE.replace('12.74ms', '1.50s')).p99us, 1_500_000);
});

test("output that is not wrk's report is an error, not zeros", () => {
  assert.throws(() => parseWrk('connection refused'), /cannot read wrk's output/);
});
