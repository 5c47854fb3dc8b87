/**
 * A closer stack: each part of a side registers how to close itself right after it is opened, and
 * one call closes everything opened so far, newest first. The same stack serves a normal stop and
 * a start-up that failed part way, so a failed start leaves no socket or process behind and the
 * stop sequence is written once.
 */
import { messageOf } from '../errors/index.js';
import type { Logger } from '../log/logger.js';

export class Closers {
  private readonly stack: { what: string; close: () => unknown }[] = [];

  constructor(private readonly log: Logger) {}

  /** `close` runs once, at `closeAll()`, after everything added later has closed. */
  add(what: string, close: () => unknown): void {
    this.stack.push({ what, close });
  }

  /** Close in reverse order of opening; a closer that fails is logged and the others still run. */
  async closeAll(): Promise<void> {
    for (let entry = this.stack.pop(); entry; entry = this.stack.pop()) {
      try {
        await entry.close();
      } catch (err) {
        this.log.warn({ err: messageOf(err), part: entry.what }, 'closing failed');
      }
    }
  }
}
