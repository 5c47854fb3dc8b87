/**
 * The one logger of the project: JSON lines (pino) on stdout, readable when stdout is a terminal.
 *
 * Every module takes a child logger with a `component` field rather than creating its own, so
 * that level, format and redaction are decided in exactly one place.
 *
 * On a terminal each event is one line (`[time] LEVEL side/component: message {other fields}`):
 * pino-pretty's default puts every field on a line of its own, which made a warning 9 lines long.
 * The supervised app's output goes through here too (`writeAppOutput`), so that with JSON logs
 * every line on stdout is JSON and `enclaver-proxy … | jq` reads all of it.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Field names whose values must never reach a log line, wherever they appear in a record. */
const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'secret',
  '*.secret',
  'SecretAccessKey',
  '*.SecretAccessKey',
  'Token',
  '*.Token',
  'token',
  '*.token',
  'private_key',
  '*.private_key',
  'password',
  '*.password',
  'plaintext',
  '*.plaintext',
];

function initialLevel(): LevelWithSilent {
  const env = process.env.ENCLAVER_LOG_LEVEL;
  if (env && ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(env)) return env as LevelWithSilent;
  return 'info';
}

function wantsPretty(): boolean {
  const env = process.env.ENCLAVER_LOG_FORMAT;
  if (env === 'json') return false;
  if (env === 'pretty') return true;
  return process.stdout.isTTY === true;
}

const prettyMode = wantsPretty();

function prettyStream() {
  // Loaded only for a terminal: JSON output (every supervised run) never pays for pino-pretty's
  // ~80 modules at start-up. require(), because the logger is made synchronously at load.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pretty({
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    messageFormat: '{if side}{side}/{end}{component}: {msg}',
    ignore: 'pid,hostname,side,component',
  });
}

// Synchronous writes: a proxy that crashes must not lose the line that explains why.
const out = prettyMode ? prettyStream() : pino.destination({ dest: 1, sync: true });

/** The logger, and a twin without the redaction pass for records whose every field is ours. */
function build(): { logger: Logger; unredacted: Logger } {
  const options = {
    level: initialLevel(),
    base: { pid: process.pid },
    // A mixin rather than a binding: module-level child loggers exist before the side is known.
    mixin: () => (side ? { side } : {}),
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const isPretty = prettyMode;
  flushHeld = (text) => out.write(text);
  const destination = {
    write(line: string) {
      // JSON lines logged inside logBatch() leave in one write when it returns (pretty output
      // formats line by line, so it is never held).
      if (held && !isPretty) held.push(line);
      else out.write(line);
      for (const tap of taps) tap(line);
    },
  };
  return {
    logger: pino({ ...options, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination),
    unredacted: pino(options, destination),
  };
}

let held: string[] | undefined;
let flushHeld: ((text: string) => void) | undefined;

/**
 * Runs `fn` and writes every line it logged in one write(2) when it returns (still synchronously,
 * so nothing is lost by a crash after it). For per-connection lines reported in batches (the
 * fast path's access log): one system call per batch instead of one per connection.
 */
export function logBatch(fn: () => void): void {
  if (held) {
    fn();
    return;
  }
  held = [];
  try {
    fn();
  } finally {
    const lines = held;
    held = undefined;
    if (lines.length > 0) flushHeld?.(lines.join(''));
  }
}

/** Receivers of every JSON log line as written (the inner forwards them to the outer). */
const taps = new Set<(line: string) => void>();

export function addLogTap(tap: (line: string) => void): () => void {
  taps.add(tap);
  return () => taps.delete(tap);
}

let side: string | undefined = process.env.ENCLAVER_SIDE || undefined;

const built = build();
export const rootLogger: Logger = built.logger;

/** Which side of the pair this process is; added to every log line. */
export function setLogSide(value: 'inner' | 'outer'): void {
  side = value;
}

export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

/**
 * The same lines to the same place, without the redaction pass, which is most of the cost of a
 * line (measured: ~7–15 µs against ~28–46 µs). Only for records built from our own numbers and
 * addresses, never from anything a peer sent: the per-connection access log.
 */
export function unredactedLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return built.unredacted.child({ component, ...bindings });
}

export function setLogLevel(level: LevelWithSilent): void {
  rootLogger.level = level;
  built.unredacted.level = level;
}
/** Whether log lines are JSON (for machines: stdout is not a terminal, or ENCLAVER_LOG_FORMAT=json). */
export function logsAreJson(): boolean {
  return !prettyMode;
}

/**
 * One line the supervised app wrote. With JSON logs it becomes a record of its own
 * (`"component":"app","stream":"stdout"`, the line in `msg`); on a terminal it is printed as the
 * app wrote it. The log level does not apply: the app's output is the app's, not the proxy's. Taps
 * (the log channel to the outer) get the record either way.
 */
export function writeAppOutput(stream: 'stdout' | 'stderr', line: string): void {
  const record = `${JSON.stringify({
    level: 'info',
    time: new Date().toISOString(),
    pid: process.pid,
    ...(side ? { side } : {}),
    component: 'app',
    stream,
    msg: line,
  })}\n`;
  if (prettyMode) process[stream].write(`${line}\n`);
  else out.write(record);
  for (const tap of taps) tap(record);
}
