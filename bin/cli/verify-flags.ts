/**
 * What the two `verify` commands (attestation, audit) share: how a usage error is reported (exit
 * 2, the message, then the usage text) and the `--pcr N=HEX` flag, so both read PCRs alike.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { groupOf } from '../../shared/util/checked.js';

export const USAGE_ERROR = 2;
export const VERIFY_FAILED = 1;

/** A reporter of usage errors for `enclaver-proxy <command>`: prints and returns the exit code. */
export function usageReporter(command: string, usageText: string): (message: string) => number {
  return (message) => {
    process.stderr.write(`enclaver-proxy ${command}: ${message}\n\n${usageText}`);
    return USAGE_ERROR;
  };
}

/** `--pcr N=HEX` values as index → hex, or the message naming the bad one. */
export function parsePcrFlags(specs: string[] | undefined): Map<number, string> | { error: string } {
  const pcrs = new Map<number, string>();
  for (const spec of specs ?? []) {
    const m = /^([0-9]{1,2})=([0-9a-fA-F]+)$/.exec(spec);
    const index = m ? Number(groupOf(m, 1)) : NaN;
    const hex = m ? groupOf(m, 2) : '';
    if (!m || index > 31 || hex.length % 2 !== 0) return { error: `--pcr ${spec}: expected N=HEX with N in 0..31` };
    pcrs.set(index, hex);
  }
  return pcrs;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `<command> SUBCOMMAND OPERAND… [options]` for the verifying commands: the options parsed
 * (strict), `--help` answered, the subcommand checked against the ones the command has.
 * Returns the values, subcommand and operands, or the exit code to end with.
 */
export function verifyArguments<O extends Options, S extends string>(
  command: string,
  usageText: string,
  args: string[],
  subcommands: readonly S[],
  options: O,
):
  | {
      values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>['values'];
      subcommand: S;
      operands: string[];
    }
  | { exit: number } {
  const usage = usageReporter(command, usageText);
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    return { exit: usage((err as Error).message) };
  }
  const { values, positionals } = parsed;
  if ((values as { help?: boolean }).help) {
    process.stdout.write(usageText);
    return { exit: 0 };
  }
  const sub = positionals[0];
  if (!subcommands.includes(sub as S)) {
    return { exit: usage(sub ? `unknown subcommand "${sub}"` : `missing subcommand: ${subcommands.join(' or ')}`) };
  }
  return { values: values as never, subcommand: sub as S, operands: positionals.slice(1) };
}
