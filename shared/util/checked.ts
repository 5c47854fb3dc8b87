/**
 * Checked access where the compiler cannot see what the code proved. With
 * `noUncheckedIndexedAccess`, `list[i]` is `T | undefined` even right after a bounds check; the
 * house rule is not to silence that with `!` (a wrong proof would then surface far away as
 * "undefined is not a function") but to read through one of these, which throws a
 * `MissingValueError` naming what was missing at the place it was missing.
 */
import { MissingValueError } from '../errors/index.js';

/** Element `index` of `list`; `what` names the list in the error. */
export function itemAt<T>(list: ArrayLike<T>, index: number, what: string): T {
  const value = list[index];
  if (value === undefined) throw new MissingValueError(what, index);
  return value;
}

/** The last element of a list the caller knows is not empty. */
export function lastOf<T>(list: ArrayLike<T>, what: string): T {
  return itemAt(list, list.length - 1, what);
}

/** Capture group `index` of a match; throws when the group did not take part in the match. */
export function groupOf(match: RegExpExecArray, index: number): string {
  return itemAt(match, index, 'regex capture group');
}

/** The value under `key`, which the caller knows was set. */
export function mapGet<K, V>(map: ReadonlyMap<K, V>, key: K, what: string): V {
  const value = map.get(key);
  if (value === undefined) throw new MissingValueError(what, String(key));
  return value;
}

/** The value under `key`, made and stored first when there is none. */
export function getOrInsert<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  const found = map.get(key);
  if (found !== undefined) return found;
  const made = make();
  map.set(key, made);
  return made;
}

/** A value set by an earlier step the caller depends on (a child's pid, a spawned pipe). */
export function present<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new MissingValueError(what, 'value');
  return value;
}
