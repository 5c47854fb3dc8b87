/**
 * Typed errors. Each carries a stable `code` (for metrics, audit reasons and tests) and the
 * context a reader needs to act on it, so messages never have to be parsed.
 */
export class ProxyError extends Error {
  readonly code: string;
  readonly context: Record<string, unknown>;

  constructor(code: string, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

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

export class ConfigError extends ProxyError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super('config_invalid', problems.map(formatProblem).join('\n'), { problems });
    this.problems = problems;
  }
}

/** A malformed address URI (`tcp://…`, `unix://…`, `vsock://…`). */
export class AddressError extends ProxyError {
  constructor(input: string, reason: string) {
    super('address_invalid', `invalid address "${input}": ${reason}`, { input, reason });
  }
}

/** A socket operation that failed: which operation, on which address, with the OS error name. */
export class TransportError extends ProxyError {
  readonly errno: string | undefined;

  constructor(op: 'listen' | 'connect' | 'accept', address: string, message: string, errno?: string, cause?: unknown) {
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
