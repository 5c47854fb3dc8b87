/**
 * What an operator on the parent sees of the enclave: its metrics through the outer's admin
 * endpoint (`/enclave/metrics`, fetched over vsock) and its log lines through the log channel.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { metricValue, startPair, type Pair } from '../helpers/pair.js';
import { FIXTURES } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, tempDir, writeConfig } from '../helpers/process.js';

describe('the enclave seen from the parent', () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair({
      app: [process.execPath, path.join(FIXTURES, 'apps/env-app.mjs')],
      readyLine: /env-app listening/,
      // Forwarding is off by default under emulation (one terminal); switch it on to test it.
      innerExtra: '  logs: { forward: true }',
    });
  });
  after(async () => {
    await pair?.stop();
  });

  test("/enclave/metrics on the outer serves the inner's metrics over vsock", async () => {
    const before =
      metricValue(
        await (await fetch(`http://127.0.0.1:${pair.outerAdmin}/enclave/metrics`)).text(),
        'enclaver_connections_total{listener="web"}',
      ) ?? 0;
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: pair.ingressPort });
      s.on('data', () => {});
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    // Connections on the native fast path are reported to JS in batches, a moment after they end.
    let text = '';
    for (let tries = 0; tries < 500; tries++) {
      const res = await fetch(`http://127.0.0.1:${pair.outerAdmin}/enclave/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      text = await res.text();
      if (metricValue(text, 'enclaver_connections_total{listener="web"}') === before + 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(metricValue(text, 'enclaver_connections_total{listener="web"}'), before + 1, 'the inner counted the connection');
    // The same figure the inner's own admin endpoint reports.
    assert.equal(metricValue(await pair.metrics('inner'), 'enclaver_connections_total{listener="web"}'), before + 1);
  });

  test("the app's output and the inner's log lines reach the outer's stdout", async () => {
    const appLine = await pair.proc.waitFor(
      (r) => r.component === 'app' && r.stream === 'stdout' && r.msg === 'env-app listening',
      10_000,
      'forwarded app line',
    );
    assert.equal(appLine.side, 'inner');
    // Inner lines arrive twice under emulation (its own stdout is the terminal too): once forwarded.
    await pair.proc.waitFor((r) => r.side === 'inner' && r.msg === 'app started', 10_000, 'inner log line');
    const forwardedStarts = pair.proc.records().filter((r) => r.side === 'inner' && r.msg === 'app started');
    assert.equal(forwardedStarts.length, 2, "the inner's line, directly and through the log channel");
  });
});

describe('/enclave/metrics when no enclave answers', () => {
  test('a standalone outer answers 503 with the reason', async () => {
    const dir = tempDir();
    const [admin] = await freePorts(1);
    const file = writeConfig(
      dir,
      'outer.yaml',
      `role: outer
admin: { address: tcp://127.0.0.1:${admin} }
vsock: { emulation_dir: ${dir} }
enclave: { cid: 16 }
`,
    );
    const proc = runCli(['--config', file]);
    try {
      await proc.waitFor((r) => r.msg === 'admin endpoint listening');
      const res = await fetch(`http://127.0.0.1:${admin}/enclave/metrics`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /^enclave metrics unavailable: connect vsock:\/\/16:17005: no peer is listening on this vsock port/);
    } finally {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
