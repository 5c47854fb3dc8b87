/**
 * Command-line entry: parse arguments, load the config, run the role it declares.
 * Config and usage errors print a precise message and exit 2 before any socket is opened.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ConfigError, formatProblem } from '../../shared/errors/index.js';
import { describeConfig } from '../../shared/config/describe.js';
import { parsePublish, type Publish } from '../../shared/config/enclaver-manifest.js';
import { applyEgressFlags } from '../../shared/config/egress.js';
import { loadConfig } from '../../shared/config/load.js';
import { setLogLevel, setLogSide } from '../../shared/log/logger.js';
import { runInner } from '../../proxy-inner/main.js';
import { runOuter } from '../../proxy-outer/main.js';
import { runLocal } from '../../proxy-outer/runtime/local.js';
import { describePump } from '../../shared/pump/index.js';
import { attestationCommand } from './attestation-command.js';
import { auditCommand } from './audit-command.js';
import { buildCommand } from './build-command.js';
import { describeEifCommand } from './describe-eif-command.js';
import { doctorCommand } from './doctor-command.js';
import { HELP } from './help.js';
import { measureCommand } from './measure-command.js';
import { schemaCommand } from './schema-command.js';

const USAGE_ERROR = 2;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function version(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function usageError(message: string): number {
  process.stderr.write(`enclaver-proxy: ${message}\nTry 'enclaver-proxy --help'.\n`);
  return USAGE_ERROR;
}

export async function main(argv: string[]): Promise<number> {
  // Subcommands with options of their own are dispatched before the proxy's options are parsed.
  if (argv[0] === 'attestation') return attestationCommand(argv.slice(1));
  if (argv[0] === 'audit') return auditCommand(argv.slice(1));
  if (argv[0] === 'doctor') return doctorCommand(argv.slice(1));
  if (argv[0] === 'build') return buildCommand(argv.slice(1), { packageRoot: PACKAGE_ROOT, version: version() });
  if (argv[0] === 'describe-eif') return describeEifCommand(argv.slice(1));
  if (argv[0] === 'measure') return measureCommand(argv.slice(1));
  const dashdash = argv.indexOf('--');
  const own = dashdash === -1 ? argv : argv.slice(0, dashdash);
  const appArgv = dashdash === -1 ? undefined : argv.slice(dashdash + 1);
  if (appArgv && appArgv.length === 0) return usageError('nothing after --: give the app command, e.g. -- node server.js');

  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        role: { type: 'string' },
        publish: { type: 'string', short: 'p', multiple: true },
        'enclave-cid': { type: 'string' },
        admin: { type: 'string' },
        'inner-admin': { type: 'string' },
        check: { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
        verbose: { type: 'boolean' },
        write: { type: 'boolean' },
        'local-inner': { type: 'boolean' },
        'audit-log': { type: 'string' },
        hosts: { type: 'string' },
      },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;

  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`enclaver-proxy ${version()}\n`);
    if (values.verbose) process.stdout.write(`node ${process.version} (${process.platform}-${process.arch})\npump: ${describePump().summary}\n`);
    return 0;
  }
  const command = positionals[0];
  if (command === 'schema') return schemaCommand({ write: values.write === true, root: PACKAGE_ROOT });
  if (command !== undefined) return usageError(`unknown command "${command}"`);
  if (!values.config) return usageError('--config FILE is required (see configs/ for examples)');

  const role = values.role;
  if (role !== undefined && role !== 'inner' && role !== 'outer' && role !== 'local') return usageError(`--role must be inner, outer or local, not "${role}"`);
  let publish: Publish[] = [];
  try {
    publish = (values.publish ?? []).map(parsePublish);
  } catch (err) {
    return usageError((err as Error).message);
  }
  let enclaveCid: number | undefined;
  if (values['enclave-cid'] !== undefined) {
    enclaveCid = Number(values['enclave-cid']);
    if (!/^[0-9]+$/.test(values['enclave-cid']) || enclaveCid < 3) return usageError(`--enclave-cid must be a number of at least 3, not "${values['enclave-cid']}"`);
  }
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) return usageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);

  let config;
  try {
    const admin = (v: string | undefined) => (v === undefined ? {} : { value: v === 'none' ? null : v });
    const outerAdmin = admin(values.admin);
    const innerAdmin = admin(values['inner-admin']);
    config = loadConfig(values.config, {
      ...(role ? { role } : {}),
      publish,
      ...(appArgv ? { appArgv } : {}),
      ...(enclaveCid !== undefined ? { enclaveCid } : {}),
      ...('value' in outerAdmin ? { admin: outerAdmin.value } : {}),
      ...('value' in innerAdmin ? { innerAdmin: innerAdmin.value } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`enclaver-proxy: invalid config\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`);
      return USAGE_ERROR;
    }
    throw err;
  }

  if (values['audit-log'] !== undefined || values.hosts !== undefined) {
    if (config.role === 'inner') return usageError('--audit-log and --hosts belong to the outer side (role outer or local)');
    applyEgressFlags(config.role === 'local' ? config.outer : config, { auditLog: values['audit-log'], hosts: values.hosts });
  }

  if (values.check) {
    process.stdout.write(stringify(describeConfig(config)));
    process.stderr.write(`${values.config}: config OK\n`);
    return 0;
  }

  const level = logLevel ?? config.logLevel;
  if (level) setLogLevel(level as (typeof LOG_LEVELS)[number]);

  if (values['local-inner']) {
    if (config.role !== 'local') return usageError('--local-inner is internal to role local');
    setLogSide('inner');
    return runInner(config.inner, { lifeline: process.stdin });
  }
  switch (config.role) {
    case 'inner':
      setLogSide('inner');
      return runInner(config);
    case 'outer':
      setLogSide('outer');
      return runOuter(config);
    case 'local':
      setLogSide('outer');
      return runLocal(config, { script: process.argv[1]!, argv });
  }
}
