/**
 * The audit stream in one process over real Unix sockets: sequence numbers, acknowledgements,
 * re-delivery after the collector comes back, the explicit audit_dropped record, de-duplication
 * after a collector restart (from the file's last line), and size rotation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EgressAuditRecord } from '../../../shared/audit/record.js';
import { parseAddress } from '../../../shared/transport/index.js';
import { AuditEvidence } from '../../../proxy-inner/audit/evidence.js';
import { AuditSender } from '../../../proxy-inner/audit/sender.js';
import { Nsm } from '../../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../../proxy-inner/nsm/simulator.js';
import { AuditCollector } from '../../../proxy-outer/audit/collector.js';
import { RotatingFile } from '../../../proxy-outer/audit/file-sink.js';

function record(n: number): EgressAuditRecord {
  const ts = new Date().toISOString();
  return {
    type: 'egress',
    ts,
    end_ts: ts,
    duration_ms: 0,
    conn_id: `c${n}`,
    listener: 'egress',
    proto: 'http_connect',
    src: '127.0.0.1:1',
    dest_host: 'example.com',
    dest_port: 443,
    dest_ip: null,
    sni: null,
    decision: 'deny',
    rule: null,
    reason: 'not_in_allow_list',
    bytes_up: 0,
    bytes_down: 0,
    closed_by: null,
    close_error: null,
  };
}

const nsm = new Nsm(new NsmSimulator());
const evidence = () => new AuditEvidence(nsm);
const DEFAULT_CHECKPOINT = { records: 1000, intervalMs: 60_000 };

function lines(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('records buffered while the collector is away are delivered in order; overflow becomes one audit_dropped record', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-'));
  const address = parseAddress(`unix://${dir}/audit.sock`);
  const file = path.join(dir, 'audit.log');
  const sender = new AuditSender({
    address,
    maxBuffered: 3,
    retryMinMs: 10,
    retryMaxMs: 20,
    evidence: evidence(),
    checkpoint: DEFAULT_CHECKPOINT,
  });
  const collectors: AuditCollector[] = [];
  const collector = () => {
    const c = new AuditCollector({ address, enclaveCid: 16, stdout: false, file: { path: file, maxBytes: 0, keep: 0 } });
    collectors.push(c);
    return c;
  };
  try {
    sender.start();
    for (let i = 1; i <= 10; i++) sender.emit(record(i));
    // The boot's attestation record is line 1 and holds a place in the buffer like any record.
    assert.deepEqual([sender.stats().buffered, sender.stats().droppedTotal], [3, 8]);

    const first = collector();
    await first.start();
    await sender.drained();
    for (let i = 11; i <= 12; i++) sender.emit(record(i));
    await sender.drained();
    const got = lines(file);
    assert.deepEqual(
      got.map((l) => l.seq),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      got.map((l) => l.conn_id ?? l.type),
      ['audit_boot', 'c1', 'c2', 'audit_dropped', 'c11', 'c12'],
    );
    assert.equal(got[3]!.count, 8);
    assert.ok(got.every((l) => l.boot_id === sender.bootId));

    // A new collector on the same file recognises what it already has when the sender repeats it.
    await first.stop();
    for (let i = 13; i <= 14; i++) sender.emit(record(i));
    await collector().start();
    await sender.drained();
    assert.deepEqual(
      lines(file).map((l) => l.seq),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  } finally {
    sender.stop();
    for (const c of collectors) await c.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('stdout gets exactly the lines the file gets', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-'));
  const address = parseAddress(`unix://${dir}/audit.sock`);
  const file = path.join(dir, 'audit.log');
  let stdout = '';
  const collector = new AuditCollector({
    address,
    enclaveCid: 16,
    stdout: true,
    writeStdout: (l) => {
      stdout += l;
    },
    file: { path: file, maxBytes: 0, keep: 0 },
  });
  const sender = new AuditSender({
    address,
    maxBuffered: 100,
    retryMinMs: 10,
    retryMaxMs: 20,
    evidence: evidence(),
    checkpoint: DEFAULT_CHECKPOINT,
  });
  try {
    await collector.start();
    sender.start();
    for (let i = 1; i <= 5; i++) sender.emit(record(i));
    await sender.drained();
    assert.equal(stdout, fs.readFileSync(file, 'utf8'));
    assert.deepEqual(
      stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { seq: number }).seq),
      [1, 2, 3, 4, 5, 6],
    );
  } finally {
    sender.stop();
    await collector.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the file rotates by size and keeps the configured number of old files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-'));
  const file = path.join(dir, 'audit.log');
  const writer = new RotatingFile({ path: file, maxBytes: 100, keep: 2 });
  const line = (n: number) => `${JSON.stringify({ seq: n, boot_id: 'b', pad: 'x'.repeat(20) })}\n`;
  for (let i = 1; i <= 10; i++) writer.write(line(i));
  writer.close();
  const names = fs.readdirSync(dir).sort();
  assert.deepEqual(names, ['audit.log', 'audit.log.1', 'audit.log.2']);
  for (const n of names) assert.ok(fs.statSync(path.join(dir, n)).size <= 100, n);
  const seqs = ['audit.log.2', 'audit.log.1', 'audit.log'].flatMap((n) => lines(path.join(dir, n)).map((l) => l.seq));
  // The oldest lines went with the file that fell off the end; the rest are contiguous.
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => 10 - seqs.length + 1 + i),
  );
  // Reopening resumes from the last line of the current file.
  const reopened = new RotatingFile({ path: file, maxBytes: 100, keep: 2 });
  assert.deepEqual(reopened.resumeFrom, { boot_id: 'b', seq: 10 });
  reopened.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
