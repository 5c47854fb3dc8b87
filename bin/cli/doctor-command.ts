/**
 * `enclaver-proxy doctor [--json]`: what this machine and build give the data plane (native addon,
 * pump, splice, pipe sizes and limits, vsock transport and local CID). Exit 0; 2 on usage errors.
 */
import { parseArgs } from 'node:util';
import { doctorReport, formatDoctorReport } from '../../shared/native/doctor.js';

export const DOCTOR_USAGE = `Usage: enclaver-proxy doctor [--json]

Reports whether the native addon is loaded and which pump moves the bytes, whether this kernel
splices our sockets, the pipe size in use against fs.pipe-max-size and fs.pipe-user-pages-soft,
and whether AF_VSOCK is available with this machine's CID.

Options:
  --json      print the report as JSON
  -h, --help  show this help
`;

export function doctorCommand(argv: string[]): number {
  let values: { json?: boolean; help?: boolean };
  try {
    const options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`enclaver-proxy doctor: ${(err as Error).message}\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const json = values.json === true;
  const report = doctorReport();
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctorReport(report)}\n`);
  return 0;
}
