/**
 * Typed errors. Each carries a stable `code` (for metrics, audit reasons and tests) and the
 * context a reader needs to act on it, so messages never have to be parsed.
 */
export class ProxyError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly context: Record<string, unknown>;

  constructor(code: Code, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/**
 * The codes of the errors defined in this module, written once (as undici's errors.js does): code
 * that throws or matches one of these names the constant, never the string.
 */
export const ErrorCode = {
  ConfigInvalid: 'config_invalid',
  AddressInvalid: 'address_invalid',
  MissingValue: 'missing_value',
} as const;

/** The socket operations a TransportError names; its code is `<op>_<errno in lower case>` or `<op>_failed`. */
export type TransportOp = 'listen' | 'connect' | 'accept';
export type TransportErrorCode = `${TransportOp}_${string}`;

/** One problem in one config file: where it is and what was expected there. */
export interface ConfigProblem {
  file: string;
  /** 1-based line in the file, when the problem can be located. */
  line?: number;
  column?: number;
  /** YAML path such as `listeners[1].address`. */
  path: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}${p.column !== undefined ? `:${p.column}` : ''}` : p.file;
  return `${where}: ${p.path || '(top level)'}: ${p.message}`;
}

export class ConfigError extends ProxyError<typeof ErrorCode.ConfigInvalid> {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(ErrorCode.ConfigInvalid, problems.map(formatProblem).join('\n'), { problems });
    this.problems = problems;
  }
}

/** A malformed address URI (`tcp://…`, `unix://…`, `vsock://…`). */
export class AddressError extends ProxyError<typeof ErrorCode.AddressInvalid> {
  constructor(input: string, reason: string) {
    super(ErrorCode.AddressInvalid, `invalid address "${input}": ${reason}`, { input, reason });
  }
}

/**
 * A value the code proved present was not: an index past the end, a regex group that did not
 * take part, a map key never set. It names what was missing, so the bug it reveals is findable.
 */
export class MissingValueError extends ProxyError<typeof ErrorCode.MissingValue> {
  constructor(what: string, key: string | number) {
    super(ErrorCode.MissingValue, `${what} ${JSON.stringify(key)} is missing`, { what, key });
  }
}

/** A socket operation that failed: which operation, on which address, with the OS error name. */
export class TransportError extends ProxyError<TransportErrorCode> {
  readonly errno: string | undefined;

  constructor(op: TransportOp, address: string, message: string, errno?: string, cause?: unknown) {
    super(errno ? `${op}_${errno.toLowerCase()}` : `${op}_failed`, `${op} ${address}: ${message}`, { op, address, errno }, { cause });
    this.errno = errno;
  }
}

/** The error name (`ECONNREFUSED`, …) of a Node system error, if it is one. */
export function errnoOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
