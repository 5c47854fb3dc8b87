/**
 * A YAML config file with positions: every problem found later (schema, semantics) can be
 * reported as file:line plus the YAML path.
 */
import fs from 'node:fs';
import { LineCounter, isMap, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors/index.js';

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

export class ConfigSource {
  readonly file: string;
  readonly data: unknown;
  private readonly doc: Document | undefined;
  private readonly lines: LineCounter;

  private constructor(file: string, data: unknown, doc: Document | undefined, lines: LineCounter) {
    this.file = file;
    this.data = data;
    this.doc = doc;
    this.lines = lines;
  }

  static read(file: string): ConfigSource {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'file not found'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EISDIR'
              ? 'is a directory'
              : (err as Error).message;
      throw new ConfigError([{ file, path: '', message: `cannot read config: ${why}` }]);
    }
    return ConfigSource.parse(file, text);
  }

  static parse(file: string, text: string): ConfigSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(
        doc.errors.map((e) => {
          const pos = lines.linePos(e.pos[0]);
          return { file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` };
        }),
      );
    }
    const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (data === null || data === undefined) throw new ConfigError([{ file, line: 1, path: '', message: 'the config is empty' }]);
    if (typeof data !== 'object' || Array.isArray(data))
      throw new ConfigError([{ file, line: 1, path: '', message: 'expected a mapping (key: value) at the top level' }]);
    return new ConfigSource(file, data, doc, lines);
  }

  /** A source for data that did not come from a file (generated configs); no line numbers. */
  static synthetic(file: string, data: unknown): ConfigSource {
    return new ConfigSource(file, data, undefined, new LineCounter());
  }

  /**
   * The same file with a changed document (command-line overrides, a translated manifest keeps
   * its own source): positions of the values that did not change are still found.
   */
  withData(data: unknown): ConfigSource {
    return new ConfigSource(this.file, data, this.doc, this.lines);
  }

  /** The position of the value at `path`, or of `key` inside the mapping at `path`. */
  locate(path: readonly PathSegment[], key?: string): { line?: number; column?: number } {
    if (!this.doc) return {};
    let node = this.doc.contents as Node | null;
    let best: Node | null = node;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
        if (!pair) break;
        node = pair.value as Node | null;
        best = node ?? (pair.key as Node) ?? best;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = (node.items[seg] as Node | undefined) ?? null;
        if (!node) break;
        best = node;
      } else break;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (pair?.key) best = pair.key as Node;
    }
    const offset = best?.range?.[0];
    if (offset === undefined) return {};
    const pos = this.lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  problem(path: readonly PathSegment[], message: string, key?: string): ConfigProblem {
    const fullPath = key !== undefined ? [...path, key] : path;
    return { file: this.file, ...this.locate(path, key), path: formatPath(fullPath), message };
  }
}
