/**
 * Flat header lists (`name, value, name, value…`, as in Node's `rawHeaders` and in the egress's
 * parsed heads) walked as pairs, for every HTTP path of the proxy (egress and ingress) alike.
 */
import { itemAt } from './checked.js';

/** Name/value pairs of a flat header list. */
export function* headerPairs(flat: readonly string[]): Generator<[name: string, value: string]> {
  for (let i = 0; i + 1 < flat.length; i += 2) yield [itemAt(flat, i, 'header name'), itemAt(flat, i + 1, 'header value')];
}
