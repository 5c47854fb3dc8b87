/**
 * `enclaver-proxy doctor [--json]`: what this machine and build give the data plane (native addon,
 * pump, splice, pipe sizes and limits, vsock transport and local CID). Exit 0; 2 on usage errors.
 */
import { parseArgs } from 'node:util';
import { doctorReport, formatDoctorReport } from './doctor.js';
import { loadNativeAddon } from '../../shared/native/addon.js';
import { checkTransportSplice, formatTransportSplice, type TransportSplice } from '../../shared/native/splice-check.js';
import { createNativePump } from '../../shared/pump/index.js';

export const DOCTOR_USAGE = `Usage: enclaver-proxy doctor [--json]

Reports whether the native addon is loaded and which pump moves the bytes; whether the pump
splices or copies on TCP, Unix and (where a loopback transport exists) vsock connections; the pipe
size in use against fs.pipe-max-size and fs.pipe-user-pages-soft; and whether AF_VSOCK is
available with this machine's CID.

Options:
  --json      print the report as JSON
  -h, --help  show this help
`;

export async function doctorCommand(argv: string[]): Promise<number> {
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
  // The native pump run between real connections of each transport (no addon: nothing splices).
  const addon = loadNativeAddon();
  const byTransport = addon ? await checkTransportSplice(createNativePump(addon)) : null;
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...report, spliceByTransport: byTransport }, null, 2)}\n`);
  } else {
    const rows = byTransport
      ? (Object.entries(byTransport) as [string, TransportSplice][]).map(
          ([t, r]) => `splice on ${t.padEnd(5)}  ${formatTransportSplice(r)}`,
        )
      : [];
    process.stdout.write(`${formatDoctorReport(report)}\n${rows.map((r) => `${r}\n`).join('')}`);
  }
  return 0;
}
