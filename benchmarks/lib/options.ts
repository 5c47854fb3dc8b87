/**
 * Command-line options of the single-purpose benchmarks (bench:egress, bench:audit, bench:kms,
 * bench:build): `--help` prints the usage, an unknown option or a value that is not a positive
 * number is one line naming it and exit 2, instead of a parseArgs stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Numeric options (all positive) and their defaults; booleans are flags. */
export type OptionSpec = Record<string, { default: number; help: string } | { flag: true; help: string }>;

export type Options<S extends OptionSpec> = {
  [K in keyof S]: S[K] extends { flag: true } ? boolean : number;
};

export function benchOptions<S extends OptionSpec>(command: string, summary: string, spec: S): Options<S> {
  const usage = [
    `Usage: ${command} [-- options]`,
    '',
    summary,
    '',
    'Options:',
    ...Object.entries(spec).map(([name, o]) => `  --${name.padEnd(14)} ${o.help}${'default' in o ? ` (default ${o.default})` : ''}`),
    '  -h, --help       this text',
  ].join('\n');
  const fail = (message: string): never => {
    process.stderr.write(`${command}: ${message}; see --help\n`);
    process.exit(2);
  };
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(spec)) options[name] = { type: 'flag' in o ? 'boolean' : 'string' };
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ options, strict: true }).values;
  } catch (err) {
    return fail((err as Error).message.split('\n')[0] ?? String(err));
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const out: Record<string, number | boolean> = {};
  for (const [name, o] of Object.entries(spec)) {
    const given = values[name];
    if ('flag' in o) {
      out[name] = given === true;
      continue;
    }
    const n = given === undefined ? o.default : Number(given);
    if (!Number.isFinite(n) || n <= 0) fail(`--${name} wants a positive number, not ${String(given)}`);
    out[name] = n;
  }
  return out as Options<S>;
}
