/** The copied vectors are the originals, byte for byte (checked where the originals exist). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ORIGINAL_VECTORS_DIR, VECTORS_DIR } from '../helpers/vectors.js';

test('test/fixtures/vectors matches ../shared/vectors', (t) => {
  if (!fs.existsSync(ORIGINAL_VECTORS_DIR)) {
    t.skip(`no ${ORIGINAL_VECTORS_DIR} on this machine; the copies are used as committed`);
    return;
  }
  for (const sub of ['attestation', 'cms']) {
    for (const name of fs.readdirSync(path.join(ORIGINAL_VECTORS_DIR, sub))) {
      const a = fs.readFileSync(path.join(ORIGINAL_VECTORS_DIR, sub, name));
      const b = fs.readFileSync(path.join(VECTORS_DIR, sub, name));
      assert.ok(a.equals(b), `${sub}/${name} differs from the original`);
    }
  }
});
