/**
 * Audit lines forwarded to a real rsyslogd (started by the test on a free loopback port, its own
 * config and work dir): RFC 5424 over TCP with octet-counting framing, and over TLS. The lines
 * rsyslog stored verify as an audit log on their own; and a record is acknowledged to the inner
 * only once syslog has it (while the server is away the inner keeps its records).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { EgressAuditRecord } from '../../shared/audit/record.js';
import { verifyAuditLog } from '../../shared/audit/verify.js';
import { parseAddress } from '../../shared/transport/index.js';
import { AuditEvidence } from '../../proxy-inner/audit/evidence.js';
import { AuditSender } from '../../proxy-inner/audit/sender.js';
import { Nsm } from '../../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../../proxy-inner/nsm/simulator.js';
import { AuditCollector } from '../../proxy-outer/audit/collector.js';
import type { SyslogTransport } from '../../shared/audit/syslog.js';
import { SyslogSink } from '../../proxy-outer/audit/syslog-sink.js';
import { makeCert, tempDir } from '../helpers/egress.js';
import { freePort } from '../helpers/ports.js';
import { RSYSLOG_GTLS, RSYSLOGD, startRsyslog, type Rsyslog } from '../helpers/rsyslog.js';
import { eventually } from '../helpers/eventually.js';

const skip = RSYSLOGD ? false : 'rsyslogd not installed (Debian package rsyslog)';
const skipTls = skip || (RSYSLOG_GTLS ? false : "rsyslog's TLS driver not installed (Debian package rsyslog-gnutls)");
const simulator = new NsmSimulator();
const nsm = new Nsm(simulator);
const dir = tempDir('audit-syslog-');

after(() => fs.rmSync(dir, { recursive: true, force: true }));

function record(n: number): EgressAuditRecord {
  const ts = new Date().toISOString();
  return {
    type: 'egress',
    ts,
    end_ts: ts,
    duration_ms: 1,
    conn_id: `s${n}`,
    listener: 'egress',
    proto: 'http_connect',
    src: '127.0.0.1:1',
    dest_host: `h${n}.example`,
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

interface Stream {
  sender: AuditSender;
  collector: AuditCollector;
  sink: SyslogSink;
  file: string;
}

async function openStream(name: string, port: number, transport: SyslogTransport): Promise<Stream> {
  const sub = path.join(dir, name);
  fs.mkdirSync(sub, { recursive: true });
  const address = parseAddress(`unix://${sub}/audit.sock`);
  const file = path.join(sub, 'audit.log');
  const sink = new SyslogSink({
    address: { kind: 'tcp', host: '127.0.0.1', port },
    transport,
    facility: 'local0',
    appName: 'enclaver-proxy',
  });
  const collector = new AuditCollector({
    address,
    enclaveCid: 16,
    stdout: false,
    file: { path: file, maxBytes: 0, keep: 0 },
    sinks: [sink],
  });
  await collector.start();
  const sender = new AuditSender({
    address,
    maxBuffered: 1000,
    retryMinMs: 5,
    retryMaxMs: 20,
    evidence: new AuditEvidence(nsm),
    checkpoint: { records: 3, intervalMs: 3_600_000 },
  });
  sender.start();
  return { sender, collector, sink, file };
}

async function closeStream(s: Stream): Promise<void> {
  s.sender.stop();
  await s.collector.stop();
}

test('rsyslog receives every line verbatim, and what it stored verifies', { skip }, async () => {
  const rsyslog = await startRsyslog(path.join(dir, 'rs-tcp'));
  const s = await openStream('tcp', rsyslog.port, { kind: 'tcp' });
  try {
    for (let i = 1; i <= 10; i++) s.sender.emit(record(i));
    s.sender.close();
    await s.sender.drained();
    const written = fs.readFileSync(s.file, 'utf8').trimEnd().split('\n');
    await eventually('rsyslog to store every line', () => rsyslog.lines().length >= written.length);
    assert.deepEqual(rsyslog.lines(), written, 'the same lines, byte for byte, in order');
    const r = verifyAuditLog([{ name: 'received.log', text: fs.readFileSync(rsyslog.outFile, 'utf8') }], { root: simulator.rootPem });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.summary.egress.deny, 10);
  } finally {
    await closeStream(s);
    await rsyslog.stop();
  }
});

test('records are acknowledged only once syslog has them', { skip }, async () => {
  const port = await freePort();
  const s = await openStream('late', port, { kind: 'tcp' });
  let rsyslog: Rsyslog | undefined;
  try {
    for (let i = 1; i <= 3; i++) s.sender.emit(record(i));
    // The file has them at once; the acknowledgement waits for syslog.
    await eventually('the file sink', () => fs.existsSync(s.file) && fs.readFileSync(s.file, 'utf8').split('\n').length > 4);
    await new Promise((r) => setTimeout(r, 200));
    // Boot record, records and a checkpoint: all in the file, none acknowledged.
    const inFile = fs.readFileSync(s.file, 'utf8').trimEnd().split('\n').length;
    assert.equal(s.sender.stats().ackedSeq, 0, 'nothing acknowledged while syslog is away');
    assert.equal(s.sender.stats().buffered, inFile);
    rsyslog = await startRsyslog(path.join(dir, 'rs-late'), { port });
    await s.sender.drained();
    assert.equal(s.sender.stats().ackedSeq, inFile);
    await eventually('rsyslog to store the lines', () => (rsyslog?.lines().length ?? 0) >= inFile);
    assert.deepEqual(
      rsyslog.lines().map((l) => (JSON.parse(l) as { seq: number }).seq),
      Array.from({ length: inFile }, (_, i) => i + 1),
    );
  } finally {
    await closeStream(s);
    await rsyslog?.stop();
  }
});

test("over TLS (RFC 5425) with the server's CA pinned", { skip: skipTls }, async () => {
  const tlsDir = path.join(dir, 'rs-tls');
  fs.mkdirSync(tlsDir, { recursive: true });
  const cert = await makeCert(tlsDir, ['syslog.test']);
  const rsyslog = await startRsyslog(tlsDir, { tls: { certFile: cert.certPath, keyFile: path.join(tlsDir, 'key.pem') } });
  const s = await openStream('tls', rsyslog.port, { kind: 'tls', ca: cert.cert, serverName: 'syslog.test' });
  try {
    for (let i = 1; i <= 5; i++) s.sender.emit(record(i));
    s.sender.close();
    await s.sender.drained();
    const written = fs.readFileSync(s.file, 'utf8').trimEnd().split('\n');
    await eventually('rsyslog to store every line', () => rsyslog.lines().length >= written.length);
    assert.deepEqual(rsyslog.lines(), written);
  } finally {
    await closeStream(s);
    await rsyslog.stop();
  }
});
