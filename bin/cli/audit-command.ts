/**
 * `enclaver-proxy audit verify FILE… [--pcr N=HEX …] [--root PEM] [--running] [--json]`: prove
 * an egress audit log from the files alone (shared/audit/verify.ts). Exit 0 when every boot
 * verifies, 1 naming the first bad record, 2 on usage errors.
 */
import fs from 'node:fs';
import { verifyAuditLog, type AuditSummary, type AuditVerifyResult } from '../../shared/audit/verify.js';
import { parsePcrFlags, usageReporter, verifyArguments, VERIFY_FAILED } from './verify-flags.js';

export const AUDIT_USAGE = `Usage: enclaver-proxy audit verify FILE… [options]

Verifies egress audit logs written by the outer (rotated files in any order: audit.log*):
each boot's attestation (signature, certificate chain, the PCRs you expect), the hash link
of every record to the one before, every checkpoint's signature, sequence continuity across
files and boots, and a closing checkpoint at the end of each boot. Names the first bad record.

Options:
  --pcr N=HEX         expect PCR N to equal HEX in every boot's attestation (repeatable)
  --root PEM          trust this attestation root instead of the AWS Nitro Enclaves root G1
                      (the NSM simulator's root off Nitro: nsm.simulator.root_certificate_path)
  --running           the newest boot may still be running: records after its last
                      checkpoint are reported as unproven instead of failing
  --json              print the result as JSON
`;

const usage = usageReporter('audit', AUDIT_USAGE);

function summaryText(s: AuditSummary): string {
  const out = [
    `boots: ${s.boots.length}, lines: ${s.lines}, checkpoints: ${s.checkpoints}`,
    `egress attempts: ${s.egress.allow + s.egress.deny + s.egress.error} (allowed ${s.egress.allow}, denied ${s.egress.deny}, error ${s.egress.error})`,
    `dropped by the enclave (counted): ${s.dropped} in ${s.dropNotices} audit_dropped record(s)`,
    `time range: ${s.from ?? '-'} … ${s.to ?? '-'}`,
  ];
  for (const b of s.boots) {
    const tail = b.closed ? 'closed' : `still open, ${b.unproven} record(s) after the last checkpoint unproven`;
    out.push(`boot ${b.bootId}: ${b.records} lines, nsm ${b.nsm}, PCR0 ${b.pcrs[0] ?? '-'}, ${tail}`);
  }
  return `${out.join('\n')}\n`;
}

function report(result: AuditVerifyResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  if (result.ok) process.stdout.write(`audit verify: PASS\n${summaryText(result.summary)}`);
  else {
    process.stdout.write(`audit verify: FAIL: ${result.failure.kind}: ${result.failure.message}\n${summaryText(result.summary)}`);
  }
}

export function auditCommand(args: string[]): number {
  const parsed = verifyArguments('audit', AUDIT_USAGE, args, ['verify'], {
    root: { type: 'string' },
    pcr: { type: 'string', multiple: true },
    running: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if ('exit' in parsed) return parsed.exit;
  const { values, operands: names } = parsed;
  if (names.length === 0) return usage('give at least one FILE');
  const expectedPcrs = parsePcrFlags(values.pcr);
  if ('error' in expectedPcrs) return usage(expectedPcrs.error);
  let files;
  let root: string | undefined;
  try {
    files = names.map((name) => ({ name, text: fs.readFileSync(name, 'utf8') }));
    root = values.root === undefined ? undefined : fs.readFileSync(values.root, 'utf8');
  } catch (err) {
    return usage((err as Error).message);
  }
  const result = verifyAuditLog(files, { expectedPcrs, running: values.running === true, ...(root ? { root } : {}) });
  report(result, values.json === true);
  return result.ok ? 0 : VERIFY_FAILED;
}
