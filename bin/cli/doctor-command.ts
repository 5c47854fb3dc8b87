/**
 * `enclaver-proxy doctor [--json]`: what this machine and build give the data plane (native addon,
 * pump, splice, pipe sizes and limits, vsock transport and local CID). Exit 0; 2 on usage errors.
 */
import { parseArgs } from 'node:util';
import { doctorReport, formatDoctorReport } from './doctor.js';

export const DOCTOR_USAGE = `Usage: enclaver-proxy doctor [--json]

Reports whether the native addon is loaded and which pump moves the bytes, whether this kernel
splices our sockets, the pipe size in use against fs.pipe-max-size and fs.pipe-user-pages-soft,
and whether AF_VSOCK is available with this machine's CID.

Options:
  --json    print the report as JSON
`;

export function doctorCommand(argv: string[]): number {
  let json: boolean;
  try {
    json = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: false }).values.json === true;
  } catch (err) {
    process.stderr.write(`enclaver-proxy doctor: ${(err as Error).message}\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  const report = doctorReport();
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctorReport(report)}\n`);
  return 0;
}
