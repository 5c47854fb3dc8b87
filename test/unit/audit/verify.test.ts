/**
 * The audit log as evidence, end to end in one process: a real sender (chain, checkpoints, the
 * simulator's attestation) and collector over a Unix socket write a file, and the verifier must
 * pass it clean and name every kind of tampering: deleted, altered, reordered, duplicated,
 * appended forged records, a cut tail, swapped rotated files, a forged checkpoint, a wrong PCR.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EgressAuditRecord } from '../../../shared/audit/record.js';
import { lineHash } from '../../../shared/audit/chain.js';
import { orderFiles, verifyAuditLog, type AuditFile, type AuditVerifyOptions } from '../../../shared/audit/verify.js';
import { parseAddress } from '../../../shared/transport/index.js';
import { AuditEvidence } from '../../../proxy-inner/audit/evidence.js';
import { AuditSender } from '../../../proxy-inner/audit/sender.js';
import { Nsm } from '../../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../../proxy-inner/nsm/simulator.js';
import { AuditCollector } from '../../../proxy-outer/audit/collector.js';
import { eventually } from '../../helpers/eventually.js';

const PCR0 = 'ab'.repeat(48);
const simulator = new NsmSimulator({ pcrs: new Map([[0, Buffer.from(PCR0, 'hex')]]) });
const nsm = new Nsm(simulator);
const trusted: AuditVerifyOptions = { root: simulator.rootPem };

function record(n: number): EgressAuditRecord {
  const ts = new Date(Date.UTC(2026, 10, 30, 12, 0, n)).toISOString();
  return {
    type: 'egress',
    ts,
    end_ts: ts,
    duration_ms: 0,
    conn_id: `c${n}`,
    listener: 'egress',
    proto: 'http_connect',
    src: '127.0.0.1:1',
    dest_host: `host${n}.example`,
    dest_port: 443,
    dest_ip: null,
    sni: null,
    decision: n % 3 === 0 ? 'allow' : 'deny',
    rule: null,
    reason: n % 3 === 0 ? 'allowed_by_rule' : 'not_in_allow_list',
    bytes_up: 0,
    bytes_down: 0,
    closed_by: null,
    close_error: null,
  };
}

/** One boot through a real sender and collector: `records` records, checkpoints every 4, closed. */
async function writeBoot(file: string, records: number, opts: { maxBuffered?: number; collectorLate?: boolean } = {}): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-sock-'));
  const address = parseAddress(`unix://${dir}/audit.sock`);
  const collector = new AuditCollector({ address, enclaveCid: 16, stdout: false, file: { path: file, maxBytes: 0, keep: 0 } });
  const sender = new AuditSender({
    address,
    maxBuffered: opts.maxBuffered ?? 1000,
    retryMinMs: 5,
    retryMaxMs: 10,
    evidence: new AuditEvidence(nsm),
    checkpoint: { records: 4, intervalMs: 3_600_000 },
  });
  try {
    if (!opts.collectorLate) await collector.start();
    sender.start();
    for (let i = 1; i <= records; i++) sender.emit(record(i));
    if (opts.collectorLate) await collector.start();
    sender.close();
    await sender.drained();
  } finally {
    sender.stop();
    await collector.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

let clean: string[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-verify-'));

before(async () => {
  const file = path.join(tmp, 'clean.log');
  await writeBoot(file, 10);
  clean = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
});

const asFile = (lines: string[], name = 'audit.log'): AuditFile => ({ name, text: `${lines.join('\n')}\n` });
const seqOf = (line: string) => (JSON.parse(line) as { seq: number }).seq;
const typeOf = (line: string) => (JSON.parse(line) as { type: string }).type;

function failure(files: AuditFile[], opts: AuditVerifyOptions = trusted) {
  const r = verifyAuditLog(files, opts);
  assert.equal(r.ok, false, 'expected the verifier to refuse');
  return (r as Extract<typeof r, { ok: false }>).failure;
}

test('a clean log verifies, with its summary', () => {
  assert.equal(typeOf(clean[0]!), 'audit_boot');
  assert.equal(typeOf(clean.at(-1)!), 'audit_checkpoint');
  assert.equal((JSON.parse(clean.at(-1)!) as { closing: boolean }).closing, true);
  const r = verifyAuditLog([asFile(clean)], { ...trusted, expectedPcrs: new Map([[0, PCR0]]) });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.summary.boots.length, 1);
  assert.deepEqual(r.summary.egress, { allow: 3, deny: 7, error: 0 });
  assert.equal(r.summary.dropped, 0);
  // 1 boot + 10 records: checkpoints after every 4 chained lines, plus the closing one.
  assert.equal(r.summary.checkpoints, clean.filter((l) => typeOf(l) === 'audit_checkpoint').length);
  assert.ok(r.summary.checkpoints >= 3);
  assert.equal(r.summary.from! <= r.summary.to!, true);
  assert.equal(r.summary.boots[0]!.pcrs[0], PCR0);
});

test('a deleted record is named', () => {
  const lines = clean.filter((_, i) => i !== 4);
  const f = failure([asFile(lines)]);
  assert.equal(f.kind, 'deleted');
  assert.equal(f.seq, 6);
  assert.match(f.message, /seq 5 is missing/);
});

test('an altered record is named by the link after it', () => {
  const i = clean.findIndex((l, k) => k > 2 && typeOf(l) === 'egress');
  const lines = [...clean];
  lines[i] = lines[i]!.replace(/host[0-9]+\.example/, 'innocent.example');
  assert.notEqual(lines[i], clean[i]);
  const f = failure([asFile(lines)]);
  assert.equal(f.kind, 'altered');
  assert.equal(f.seq, i + 2);
  assert.match(f.message, new RegExp(`does not match seq ${i + 1} \\(audit\\.log:${i + 1}\\)`));
});

test('reordered records are named', () => {
  const lines = [...clean];
  [lines[4], lines[5]] = [lines[5]!, lines[4]!];
  const f = failure([asFile(lines)]);
  assert.equal(f.kind, 'reordered');
  assert.equal(f.where, 'audit.log:5');
});

test('a duplicated record is named', () => {
  const lines = [...clean.slice(0, 6), clean[4]!, ...clean.slice(6)];
  const f = failure([asFile(lines)]);
  assert.equal(f.kind, 'duplicated');
  assert.equal(f.seq, 5);
});

test('a forged record appended after the closing checkpoint is named, however well it links', () => {
  const last = JSON.parse(clean.at(-1)!) as { seq: number; boot_id: string };
  const forged = JSON.stringify({
    seq: last.seq + 1,
    boot_id: last.boot_id,
    prev: lineHash(clean.at(-1)!),
    ...record(99),
    decision: 'allow',
  });
  const f = failure([asFile([...clean, forged])]);
  assert.equal(f.kind, 'forged');
  assert.match(f.message, /after the boot's closing checkpoint/);
});

test('a forged checkpoint (re-linked, but not signed by the boot key) is named', () => {
  const i = clean.findIndex((l) => typeOf(l) === 'audit_checkpoint');
  const lines = [...clean];
  lines[i] = lines[i]!.replace(/"ts":"[^"]+"/, '"ts":"2030-01-01T00:00:00.000Z"');
  const f = failure([asFile(lines)]);
  assert.equal(f.kind, 'forged');
  assert.equal(f.seq, seqOf(clean[i]!));
  assert.match(f.message, /signature/);
});

test('a cut tail is named: the boot has no closing checkpoint', () => {
  const f = failure([asFile(clean.slice(0, -2))]);
  assert.equal(f.kind, 'truncated');
  assert.match(f.message, /without a closing checkpoint/);
  // A boot that still runs may lack it, and its unproven tail is reported.
  const r = verifyAuditLog([asFile(clean.slice(0, -2))], { ...trusted, running: true });
  assert.ok(r.ok);
  assert.ok(r.summary.boots[0]!.unproven > 0);
});

test('rotated files are put in order by name, and two swapped files are named', () => {
  const parts = [clean.slice(0, 5), clean.slice(5, 10), clean.slice(10)];
  const named = [asFile(parts[2]!, 'audit.log'), asFile(parts[1]!, 'audit.log.1'), asFile(parts[0]!, 'audit.log.2')];
  assert.deepEqual(
    orderFiles(named).map((f) => f.name),
    ['audit.log.2', 'audit.log.1', 'audit.log'],
  );
  assert.ok(verifyAuditLog(named, trusted).ok);
  const swapped = [asFile(parts[2]!, 'audit.log'), asFile(parts[0]!, 'audit.log.1'), asFile(parts[1]!, 'audit.log.2')];
  const f = failure(swapped);
  assert.equal(f.kind, 'reordered');
  assert.match(f.where, /^audit\.log\.2:1$/);
});

test('the attestation must chain to the pinned root and carry the PCRs asked for', () => {
  const f = failure([asFile(clean)], {});
  assert.equal(f.kind, 'attestation');
  assert.match(f.message, /wrong_root.*--root/);
  const g = failure([asFile(clean)], { ...trusted, expectedPcrs: new Map([[0, 'cd'.repeat(48)]]) });
  assert.equal(g.kind, 'attestation');
  assert.match(g.message, /PCR0|pcr/i);
});

test('a boot whose first lines are gone, or that begins without an attestation, is refused', () => {
  const f = failure([asFile(clean.slice(3))]);
  assert.equal(f.kind, 'deleted');
  const forgedBoot = JSON.stringify({ seq: 1, boot_id: 'forged-boot', prev: '0'.repeat(64), ...record(1) });
  const g = failure([asFile([...clean, forgedBoot])]);
  assert.equal(g.kind, 'forged');
  assert.equal(g.bootId, 'forged-boot');
});

test('records dropped under overflow verify as a counted drop; two boots in one file verify', async () => {
  const file = path.join(tmp, 'drop.log');
  await writeBoot(file, 12, { maxBuffered: 5, collectorLate: true });
  await writeBoot(file, 2);
  const text = fs.readFileSync(file, 'utf8');
  const r = verifyAuditLog([{ name: 'drop.log', text }], trusted);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.summary.boots.length, 2);
  assert.equal(r.summary.dropNotices, 1);
  // Every attempt is a line of its own or inside the count.
  assert.equal(r.summary.egress.allow + r.summary.egress.deny + r.summary.dropped, 14);
});

test('a quiet stream still gets a checkpoint at the interval', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-interval-'));
  const address = parseAddress(`unix://${dir}/audit.sock`);
  const file = path.join(dir, 'audit.log');
  const collector = new AuditCollector({ address, enclaveCid: 16, stdout: false, file: { path: file, maxBytes: 0, keep: 0 } });
  const sender = new AuditSender({
    address,
    maxBuffered: 100,
    retryMinMs: 5,
    retryMaxMs: 10,
    evidence: new AuditEvidence(nsm),
    checkpoint: { records: 1000, intervalMs: 20 },
  });
  const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trimEnd().split('\n').filter(Boolean) : []);
  try {
    await collector.start();
    sender.start();
    sender.emit(record(1));
    sender.emit(record(2));
    await eventually('a checkpoint', () => lines().some((l) => typeOf(l) === 'audit_checkpoint'));
    const got = lines();
    assert.deepEqual(got.map(typeOf), ['audit_boot', 'egress', 'egress', 'audit_checkpoint']);
    // Running, not closed: the tail after the checkpoint is empty, so nothing is unproven.
    const r = verifyAuditLog([asFile(got)], { ...trusted, running: true });
    assert.ok(r.ok && r.summary.boots[0]!.unproven === 0, JSON.stringify(r));
  } finally {
    sender.stop();
    await collector.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
