/**
 * Command-line entry: parse arguments, load the config, run the role it declares.
 * Config and usage errors print a precise message and exit 2 before any socket is opened.
 *
 * Every module a command needs is imported when that command runs (`import()`), not at start:
 * `--version` loads nothing but this file, a config check loads the config code, and only a
 * running side loads its data plane. Start-up time is what a user and a supervisor wait for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LoadOptions } from '../../shared/config/load.js';
import type { Publish } from '../../shared/config/enclaver-manifest.js';
import type { LogLevel } from '../../shared/config/schema.js';

const USAGE_ERROR = 2;
/** The same list as the config's `log.level` (shared/config/schema.ts), kept here so --help costs no import. */
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

type Command = (argv: string[]) => number | Promise<number>;

/** Subcommands with options of their own: each module is loaded only when its command runs. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  attestation: async () => (await import('./attestation-command.js')).attestationCommand,
  audit: async () => (await import('./audit-command.js')).auditCommand,
  build: async () => {
    const { buildCommand } = await import('./build-command.js');
    return (args) => buildCommand(args, { packageRoot: PACKAGE_ROOT, version: version() });
  },
  doctor: async () => (await import('./doctor-command.js')).doctorCommand,
  'describe-eif': async () => (await import('./describe-eif-command.js')).describeEifCommand,
  measure: async () => {
    const { measureCommand } = await import('./measure-command.js');
    return (args) => measureCommand(args, { packageRoot: PACKAGE_ROOT, version: version() });
  },
  run: async () => (await import('./run-command.js')).runCommand,
};

function version(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function usageError(message: string): number {
  process.stderr.write(`enclaver-proxy: ${message}\nTry 'enclaver-proxy --help'.\n`);
  return USAGE_ERROR;
}

function parseProxyArgs(own: string[]) {
  return parseArgs({
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
}

type ProxyValues = ReturnType<typeof parseProxyArgs>['values'];

/** The command-line overrides of the config, checked for form; where they apply is the loader's to say. */
async function loadOptions(values: ProxyValues, appArgv: string[] | undefined): Promise<LoadOptions | string> {
  const role = values.role;
  if (role !== undefined && role !== 'inner' && role !== 'outer' && role !== 'local')
    return `--role must be inner, outer or local, not "${role}"`;
  let publish: Publish[] = [];
  if (values.publish?.length) {
    const { parsePublish } = await import('../../shared/config/enclaver-manifest.js');
    try {
      publish = values.publish.map(parsePublish);
    } catch (err) {
      return (err as Error).message;
    }
  }
  const cid = values['enclave-cid'];
  // 1 is the vsock loopback transport (tests in a VM); 0 and 2 are never an enclave.
  if (cid !== undefined && (!/^[0-9]+$/.test(cid) || Number(cid) === 0 || Number(cid) === 2))
    return `--enclave-cid must be 1 or a number of at least 3, not "${cid}"`;
  const admin = (v: string | undefined) => (v === 'none' ? null : v);
  return {
    ...(role ? { role } : {}),
    publish,
    ...(appArgv ? { appArgv } : {}),
    ...(cid !== undefined ? { enclaveCid: Number(cid) } : {}),
    ...(values.admin !== undefined ? { admin: admin(values.admin) } : {}),
    ...(values['inner-admin'] !== undefined ? { innerAdmin: admin(values['inner-admin']) } : {}),
    ...(values.hosts !== undefined ? { hosts: values.hosts } : {}),
    ...(values['audit-log'] !== undefined ? { auditLog: values['audit-log'] } : {}),
  };
}

export async function main(argv: string[]): Promise<number> {
  // Subcommands with options of their own are dispatched before the proxy's options are parsed.
  const command = argv[0] !== undefined ? COMMANDS[argv[0]] : undefined;
  if (command) return (await command())(argv.slice(1));
  const dashdash = argv.indexOf('--');
  const own = dashdash === -1 ? argv : argv.slice(0, dashdash);
  const appArgv = dashdash === -1 ? undefined : argv.slice(dashdash + 1);
  if (appArgv && appArgv.length === 0) return usageError('nothing after --: give the app command, e.g. -- node server.js');

  let parsed;
  try {
    parsed = parseProxyArgs(own);
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;

  if (values.help) {
    process.stdout.write((await import('./help.js')).HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`enclaver-proxy ${version()}\n`);
    if (values.verbose) {
      const { describePump } = await import('../../shared/pump/index.js');
      process.stdout.write(`node ${process.version} (${process.platform}-${process.arch})\npump: ${describePump().summary}\n`);
    }
    return 0;
  }
  const positional = positionals[0];
  if (positional === 'schema')
    return (await import('./schema-command.js')).schemaCommand({ write: values.write === true, root: PACKAGE_ROOT });
  if (positional !== undefined) return usageError(`unknown command "${positional}"`);
  if (!values.config) return usageError('--config FILE is required (see configs/ for examples)');
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel))
    return usageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const opts = await loadOptions(values, appArgv);
  if (typeof opts === 'string') return usageError(opts);

  const { loadWithNotices } = await import('../../shared/config/load.js');
  const { ConfigSource } = await import('../../shared/config/source.js');
  const { ConfigError, formatProblem } = await import('../../shared/errors/index.js');
  let loaded;
  try {
    const checkFiles = values.check ? (await import('./check-files.js')).checkReferencedFiles : undefined;
    loaded = loadWithNotices(ConfigSource.read(values.config), opts, checkFiles);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`enclaver-proxy: invalid config\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`);
      return USAGE_ERROR;
    }
    throw err;
  }
  const { config, notices } = loaded;
  for (const notice of notices) process.stderr.write(`enclaver-proxy: notice: ${notice}\n`);

  if (values.check) {
    const { stringify } = await import('yaml');
    process.stdout.write(stringify(loaded.document()));
    process.stderr.write(`${values.config}: config OK\n`);
    return 0;
  }

  const { setLogLevel, setLogSide } = await import('../../shared/log/logger.js');
  const level = (logLevel as LogLevel | undefined) ?? config.logLevel;
  if (level) setLogLevel(level);

  if (values['local-inner']) {
    if (config.role !== 'local') return usageError('--local-inner is internal to role local');
    setLogSide('inner');
    return (await import('../../proxy-inner/main.js')).runInner(config.inner, { lifeline: process.stdin });
  }
  switch (config.role) {
    case 'inner':
      setLogSide('inner');
      return (await import('../../proxy-inner/main.js')).runInner(config);
    case 'outer':
      setLogSide('outer');
      return (await import('../../proxy-outer/main.js')).runOuter(config);
    case 'local':
      setLogSide('outer');
      return (await import('../../proxy-outer/runtime/local.js')).runLocal(config, { script: process.argv[1] ?? '', argv });
  }
}
