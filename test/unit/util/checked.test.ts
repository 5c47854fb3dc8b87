/**
 * Checked access (shared/util/checked.ts), the replacement for non-null assertions: a value that
 * is there comes back as it is; one that is not throws a MissingValueError naming what was missing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MissingValueError } from '../../../shared/errors/index.js';
import { getOrInsert, groupOf, itemAt, lastOf, mapGet, present } from '../../../shared/util/checked.js';

function missing(what: string): (err: unknown) => boolean {
  return (err) => err instanceof MissingValueError && err.code === 'missing_value' && err.message.startsWith(what);
}

describe('checked access', () => {
  test('items, last items and bytes that are there', () => {
    assert.equal(itemAt(['a', 'b'], 1, 'letter'), 'b');
    assert.equal(lastOf([1, 2, 3], 'number'), 3);
    assert.equal(itemAt(Uint8Array.of(7, 8), 0, 'byte'), 7);
    assert.equal(itemAt([0, ''], 0, 'falsy item'), 0, 'a falsy value is a value');
  });

  test('an index past the end, an empty list, a hole: named errors', () => {
    assert.throws(() => itemAt(['a'], 1, 'letter'), missing('letter 1 is missing'));
    assert.throws(() => lastOf([], 'number'), missing('number -1 is missing'));
    assert.throws(() => itemAt(Uint8Array.of(1), 4, 'address byte'), missing('address byte 4'));
  });

  test('regex groups: one that took part, one that did not', () => {
    const m = /^(a)(b)?$/.exec('a');
    assert.ok(m);
    assert.equal(groupOf(m, 1), 'a');
    assert.throws(() => groupOf(m, 2), missing('regex capture group 2'));
  });

  test('maps: a key that was set, one that was not, and get-or-insert', () => {
    const map = new Map<string, Set<number>>();
    assert.throws(() => mapGet(map, 'boot', 'seqs of boot'), missing('seqs of boot "boot"'));
    getOrInsert(map, 'boot', () => new Set()).add(1);
    getOrInsert(map, 'boot', () => new Set()).add(2);
    assert.deepEqual([...mapGet(map, 'boot', 'seqs of boot')], [1, 2]);
  });

  test('present: null and undefined are missing, 0 and "" are not', () => {
    assert.equal(present(0, 'pid'), 0);
    assert.equal(present('', 'text'), '');
    assert.throws(() => present(undefined, 'child pid'), missing('child pid'));
    assert.throws(() => present(null, 'stdin pipe'), missing('stdin pipe'));
  });
});
