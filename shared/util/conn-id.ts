/**
 * Connection ids: a short per-process boot id plus a counter, so ids from a restarted process
 * never collide with earlier ones in logs and audit records.
 */
import { randomBytes } from 'node:crypto';

const boot = randomBytes(3).toString('hex');
let counter = 0;

/** The id of a connection the native fast path numbered (`conn` in its records): the same for every record of it. */
export function fastConnId(conn: number): string {
  return `${boot}-n${conn - 2 ** 52}`;
}

export function nextConnId(): string {
  counter += 1;
  return `${boot}-${counter}`;
}
