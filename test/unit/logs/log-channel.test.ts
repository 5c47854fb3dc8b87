/**
 * The log channel between the sides: lines kept while the outer is away, the oldest dropped past
 * the buffer and the drop reported in the stream, lines delivered in order, one per line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LogForwarder } from '../../../proxy-inner/logs/forwarder.js';
import { LogCollector } from '../../../proxy-outer/logs/collector.js';
import { configureVsock } from '../../../shared/transport/vsock.js';
import { LineSplitter } from '../../../shared/util/line-splitter.js';
import { eventually } from '../../helpers/eventually.js';

test('lines written while the outer is unreachable arrive once it listens; overflow is reported', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ep-logs-'));
  // Both ends in this process: the forwarder dials the parent (CID 3), the collector is CID 3.
  configureVsock({ emulationDir: dir, localCid: 3 });
  const forwarder = new LogForwarder({ maxBufferedBytes: 4096 });
  forwarder.start();
  for (let i = 0; i < 100; i++) forwarder.write(`line ${String(i).padStart(3, '0')} ${'x'.repeat(90)}`);
  await new Promise((r) => setTimeout(r, 150));

  let received = '';
  const collector = new LogCollector({
    enclaveCid: 16,
    out: (t) => {
      received += t;
    },
  });
  await collector.start();
  await eventually('line 099', () => received.includes('line 099'));
  const lines = received.trimEnd().split('\n');
  const notice = JSON.parse(lines[0]!) as { dropped: number; msg: string; component: string };
  assert.equal(notice.component, 'logs');
  const kept = lines.slice(1);
  assert.equal(notice.dropped + kept.length, 100, 'every line is either delivered or counted as dropped');
  assert.ok(kept.length * 98 <= 4096 + 98, 'no more than the buffer was kept');
  assert.deepEqual(
    kept.map((l) => l.slice(0, 8)),
    Array.from({ length: kept.length }, (_, i) => `line ${String(100 - kept.length + i).padStart(3, '0')}`),
    'the newest lines, in order',
  );

  forwarder.write('one more {"with":"json"}\nand an embedded newline');
  await eventually('the embedded-newline line', () => received.includes('embedded newline'));
  assert.ok(received.endsWith('one more {"with":"json"} and an embedded newline\n'), 'an embedded newline cannot forge a second line');
  await forwarder.stop();
  await collector.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the line splitter handles partial chunks, CRLF and runaway lines', () => {
  const s = new LineSplitter(10);
  assert.deepEqual(s.push('ab'), []);
  assert.deepEqual(s.push('c\r\nde\nf'), ['abc', 'de']);
  assert.deepEqual(s.push('0123456789012'), ['f012345678']);
  assert.deepEqual(s.end(), ['9012']);
  assert.deepEqual(s.end(), []);
});
