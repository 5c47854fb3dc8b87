/**
 * Verifying an audit log from the files alone (`enclaver-proxy audit verify`): for each boot, the
 * attestation in line 1 (chain to the pinned root, the PCRs asked for, `user_data` naming the
 * boot, a P-384 `public_key`), then every line's `seq` and `prev` link, every checkpoint's
 * signature and range, and a closing checkpoint at the end. It stops at the first bad line and
 * names it with what went wrong (deleted, altered, reordered, duplicated, forged, truncated);
 * otherwise it returns a summary. Format: shared/audit/chain.ts.
 *
 * Rotated files are put in stream order by name (`audit.log.3`, `.2`, `.1`, `audit.log`), so a
 * shell glob works and two swapped files show as reordered records.
 */
import crypto from 'node:crypto';
import { getOrInsert, groupOf, itemAt, mapGet } from '../util/checked.js';
import { AttestationError } from '../attestation/errors.js';
import { verifyAttestation } from '../attestation/verify.js';
import { attestationUserData, GENESIS_PREV, lineHash, verifyLineSignature } from './chain.js';

export type AuditFailureKind = 'malformed' | 'attestation' | 'deleted' | 'altered' | 'reordered' | 'duplicated' | 'forged' | 'truncated';

export interface AuditFailure {
  kind: AuditFailureKind;
  /** `file:line`, or the file alone for a problem with a whole boot's end. */
  where: string;
  seq: number | null;
  bootId: string | null;
  message: string;
}

export interface BootSummary {
  bootId: string;
  nsm: string;
  records: number;
  firstTs: string;
  lastTs: string;
  /** PCR index → hex, from the boot's attestation. */
  pcrs: Record<number, string>;
  closed: boolean;
  /** Records after the last checkpoint (a running boot's tail; 0 when closed). */
  unproven: number;
}

export interface AuditSummary {
  boots: BootSummary[];
  lines: number;
  egress: { allow: number; deny: number; error: number };
  /** Records the inner could not keep, as counted by its audit_dropped records. */
  dropped: number;
  dropNotices: number;
  checkpoints: number;
  from: string | null;
  to: string | null;
}

export type AuditVerifyResult = { ok: true; summary: AuditSummary } | { ok: false; failure: AuditFailure; summary: AuditSummary };

export interface AuditVerifyOptions {
  /** PEM of the trusted attestation root (the AWS Nitro root by default; the simulator's off Nitro). */
  root?: string;
  expectedPcrs?: Map<number, string>;
  /** The newest boot may still be running: its tail after the last checkpoint is reported, not failed. */
  running?: boolean;
}

export interface AuditFile {
  name: string;
  text: string;
}

interface Line {
  where: string;
  text: string;
}

interface BootState {
  key: crypto.KeyObject;
  summary: BootSummary;
  lastSeq: number;
  lastHash: string;
  lastWhere: string;
  lastCheckpointSeq: number;
  /** Short hash per seq: tells a duplicate from a reordered record. */
  hashes: Map<number, string>;
}

class Failure extends Error {
  constructor(readonly failure: AuditFailure) {
    super(failure.message);
  }
}

/** Stream order: for `X` and `X.N` the highest N first, `X` last; other files as given. */
export function orderFiles<T extends { name: string }>(files: T[]): T[] {
  const key = (name: string) => {
    const m = /^(.*)\.([0-9]+)$/.exec(name);
    if (!m) return { base: name, n: 0 };
    const base = groupOf(m, 1);
    return files.some((f) => f.name === base) ? { base, n: Number(groupOf(m, 2)) } : { base: name, n: 0 };
  };
  const bases = [...new Set(files.map((f) => key(f.name).base))];
  return [...files].sort((a, b) => {
    const ka = key(a.name);
    const kb = key(b.name);
    return ka.base === kb.base ? kb.n - ka.n : bases.indexOf(ka.base) - bases.indexOf(kb.base);
  });
}

function splitLines(files: AuditFile[]): Line[] {
  const lines: Line[] = [];
  for (const f of orderFiles(files)) {
    const texts = f.text.split('\n');
    if (texts.at(-1) === '') texts.pop();
    texts.forEach((text, i) => lines.push({ where: `${f.name}:${i + 1}`, text }));
  }
  return lines;
}

interface Parsed {
  seq: number;
  boot_id: string;
  prev: string;
  type: string;
  [field: string]: unknown;
}

function parseLine(line: Line): Parsed {
  let v: unknown;
  try {
    v = JSON.parse(line.text);
  } catch {
    throw new Failure({ kind: 'malformed', where: line.where, seq: null, bootId: null, message: 'not a JSON line' });
  }
  const p = v as Partial<Parsed> | null;
  if (
    p === null ||
    typeof p !== 'object' ||
    !Number.isSafeInteger(p.seq) ||
    (p.seq as number) < 1 ||
    typeof p.boot_id !== 'string' ||
    typeof p.prev !== 'string' ||
    !/^[0-9a-f]{64}$/.test(p.prev) ||
    typeof p.type !== 'string'
  ) {
    throw new Failure({
      kind: 'malformed',
      where: line.where,
      seq: null,
      bootId: null,
      message: 'not an audit line (seq, boot_id, prev and type expected)',
    });
  }
  return p as Parsed;
}

function fail(kind: AuditFailureKind, line: Line, p: Parsed, message: string): never {
  throw new Failure({
    kind,
    where: line.where,
    seq: p.seq,
    bootId: p.boot_id,
    message: `${line.where}: seq ${p.seq} of boot ${p.boot_id}: ${message}`,
  });
}

/** Line 1 of a boot: its attestation, checked, and the checkpoint key it binds. */
function openBoot(line: Line, p: Parsed, opts: AuditVerifyOptions): BootState {
  if (p.type !== 'audit_boot') fail('forged', line, p, `a boot must begin with its attested audit_boot record, not "${p.type}"`);
  if (p.prev !== GENESIS_PREV) fail('forged', line, p, 'the first record of a boot links to nothing (prev is all zeros)');
  if (typeof p.attestation !== 'string') fail('malformed', line, p, 'audit_boot without an attestation document');
  let verified;
  try {
    verified = verifyAttestation(Buffer.from(p.attestation, 'base64'), {
      at: 'document',
      ...(opts.root ? { root: opts.root } : {}),
      ...(opts.expectedPcrs ? { expectedPcrs: opts.expectedPcrs } : {}),
    });
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    const hint = err.code === 'wrong_root' && p.nsm === 'simulator' ? ' (a simulated NSM: pass its root with --root)' : '';
    fail('attestation', line, p, `the boot's attestation does not verify: ${err.code}: ${err.message}${hint}`);
  }
  const doc = verified.document;
  if (!doc.userData?.equals(attestationUserData(p.boot_id)))
    fail('attestation', line, p, "the attestation's user_data does not name this boot");
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey({ key: doc.publicKey ?? Buffer.alloc(0), format: 'der', type: 'spki' });
  } catch {
    fail('attestation', line, p, "the attestation's public_key is not an SPKI public key");
  }
  if (key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') fail('attestation', line, p, "the attestation's public_key is not a P-384 key");
  const ts = typeof p.ts === 'string' ? p.ts : new Date(doc.timestamp).toISOString();
  const pcrs = Object.fromEntries([...doc.pcrs].map(([i, v]) => [i, v.toString('hex')]));
  return {
    key,
    lastSeq: 1,
    lastHash: lineHash(line.text),
    lastWhere: line.where,
    lastCheckpointSeq: 0,
    hashes: new Map([[1, lineHash(line.text).slice(0, 16)]]),
    summary: { bootId: p.boot_id, nsm: String(p.nsm), records: 1, firstTs: ts, lastTs: ts, pcrs, closed: false, unproven: 0 },
  };
}

/** Where a line whose seq is not the next one belongs: earlier (duplicate or reordered) or later (gap). */
function outOfSequence(line: Line, p: Parsed, st: BootState, seqsAhead: Map<string, Set<number>>): never {
  const expected = st.lastSeq + 1;
  if (p.seq <= st.lastSeq) {
    if (st.hashes.get(p.seq) === lineHash(line.text).slice(0, 16))
      fail('duplicated', line, p, `a copy of seq ${p.seq}, which was already read`);
    fail('reordered', line, p, `comes after seq ${st.lastSeq} (${st.lastWhere})`);
  }
  if (seqsAhead.get(p.boot_id)?.has(expected))
    fail('reordered', line, p, `comes before seq ${expected}, which is further on (records or files out of order)`);
  const missing = p.seq - expected === 1 ? `seq ${expected} is` : `seqs ${expected}…${p.seq - 1} are`;
  fail('deleted', line, p, `${missing} missing after seq ${st.lastSeq} (${st.lastWhere})`);
}

function account(summary: AuditSummary, st: BootState, p: Parsed): void {
  if (p.type === 'egress') {
    const d = p.decision;
    if (d === 'allow' || d === 'deny' || d === 'error') summary.egress[d] += 1;
  } else if (p.type === 'audit_dropped') {
    summary.dropNotices += 1;
    summary.dropped += typeof p.count === 'number' ? p.count : 0;
  } else if (p.type === 'audit_checkpoint') {
    summary.checkpoints += 1;
  }
  const ts = typeof p.end_ts === 'string' ? p.end_ts : typeof p.ts === 'string' ? p.ts : undefined;
  if (ts && ts > st.summary.lastTs) st.summary.lastTs = ts;
}

function checkCheckpoint(line: Line, p: Parsed, st: BootState): void {
  if (typeof p.sig !== 'string' || !verifyLineSignature(line.text, p.sig, st.key)) {
    fail('forged', line, p, "checkpoint signature does not verify with the boot's attested key (altered or forged)");
  }
  if (p.first_seq !== st.lastCheckpointSeq + 1 || p.last_seq !== p.seq - 1) {
    fail(
      'forged',
      line,
      p,
      `checkpoint range ${String(p.first_seq)}…${String(p.last_seq)} does not follow the previous checkpoint (seq ${st.lastCheckpointSeq})`,
    );
  }
  st.lastCheckpointSeq = p.seq;
  if (p.closing === true) st.summary.closed = true;
}

export function verifyAuditLog(files: AuditFile[], opts: AuditVerifyOptions = {}): AuditVerifyResult {
  const summary: AuditSummary = {
    boots: [],
    lines: 0,
    egress: { allow: 0, deny: 0, error: 0 },
    dropped: 0,
    dropNotices: 0,
    checkpoints: 0,
    from: null,
    to: null,
  };
  const boots = new Map<string, BootState>();
  const lines = splitLines(files);
  const parsed: Parsed[] = [];
  try {
    for (const line of lines) parsed.push(parseLine(line));
    // Seqs still to come, per boot: a missing seq found further on is a reordering, not a deletion.
    const ahead = new Map<string, Set<number>>();
    for (const p of parsed) getOrInsert(ahead, p.boot_id, () => new Set<number>()).add(p.seq);
    lines.forEach((line, i) => {
      const p = itemAt(parsed, i, 'parsed audit line');
      const bootAhead = mapGet(ahead, p.boot_id, 'seqs ahead of boot');
      bootAhead.delete(p.seq);
      summary.lines += 1;
      const st = boots.get(p.boot_id);
      if (!st) {
        if (p.seq !== 1) {
          if (bootAhead.has(1)) fail('reordered', line, p, 'comes before seq 1 of its boot (records or files out of order)');
          fail(
            'deleted',
            line,
            p,
            `the boot's first record in these files is seq ${p.seq}: seqs 1…${p.seq - 1}, with the boot's attestation, are missing`,
          );
        }
        const opened = openBoot(line, p, opts);
        boots.set(p.boot_id, opened);
        summary.boots.push(opened.summary);
        return;
      }
      if (st.summary.closed) fail('forged', line, p, "a record after the boot's closing checkpoint");
      if (p.seq !== st.lastSeq + 1) outOfSequence(line, p, st, ahead);
      if (p.prev !== st.lastHash) {
        fail('altered', line, p, `its prev does not match seq ${st.lastSeq} (${st.lastWhere}): that record (or this one) was altered`);
      }
      if (p.type === 'audit_boot') fail('forged', line, p, 'a second audit_boot record in one boot');
      if (p.type === 'audit_checkpoint') checkCheckpoint(line, p, st);
      else if (p.type !== 'egress' && p.type !== 'audit_dropped') fail('malformed', line, p, `unknown record type "${p.type}"`);
      account(summary, st, p);
      st.summary.records += 1;
      st.lastSeq = p.seq;
      st.lastHash = lineHash(line.text);
      st.lastWhere = line.where;
      st.hashes.set(p.seq, st.lastHash.slice(0, 16));
    });
    checkEnds(boots, summary, opts);
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    finishSummary(summary, boots);
    return { ok: false, failure: err.failure, summary };
  }
  finishSummary(summary, boots);
  return { ok: true, summary };
}

/** Every boot ends with a closing checkpoint, except (with `running`) the newest one. */
function checkEnds(boots: Map<string, BootState>, summary: AuditSummary, opts: AuditVerifyOptions): void {
  const newest = summary.boots.at(-1)?.bootId;
  for (const st of boots.values()) {
    st.summary.unproven = st.lastSeq - st.lastCheckpointSeq;
    if (st.summary.closed || (opts.running && st.summary.bootId === newest)) continue;
    const after = st.lastCheckpointSeq === 0 ? 'no checkpoint at all' : `last checkpoint at seq ${st.lastCheckpointSeq}`;
    throw new Failure({
      kind: 'truncated',
      where: st.lastWhere,
      seq: st.lastSeq,
      bootId: st.summary.bootId,
      message:
        `boot ${st.summary.bootId} ends at seq ${st.lastSeq} (${st.lastWhere}) without a closing checkpoint (${after}): ` +
        'the tail was cut, or the enclave stopped without closing its log (--running if it still runs)',
    });
  }
}

function finishSummary(summary: AuditSummary, boots: Map<string, BootState>): void {
  for (const st of boots.values()) {
    if (summary.from === null || st.summary.firstTs < summary.from) summary.from = st.summary.firstTs;
    if (summary.to === null || st.summary.lastTs > summary.to) summary.to = st.summary.lastTs;
  }
}
