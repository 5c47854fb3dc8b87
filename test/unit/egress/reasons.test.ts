/**
 * The audit `reason` table in docs/egress.md lists exactly the reasons the code can write
 * (EGRESS_REASONS, which the compiler keeps complete over the EgressReason union).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EGRESS_REASONS } from '../../../proxy-inner/egress/reasons.js';
import { ROOT } from '../../helpers/paths.js';

test('docs/egress.md describes every audit reason and no other', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'egress.md'), 'utf8');
  const section = doc.slice(doc.indexOf('<!-- reasons:begin -->'), doc.indexOf('<!-- reasons:end -->'));
  assert.ok(section.length > 0, 'docs/egress.md has the reasons table markers');
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  // The rows are the table EGRESS_REASONS makes, in its order, word for word.
  assert.deepEqual(
    rows,
    Object.entries(EGRESS_REASONS).map(([reason, meaning]) => `| \`${reason}\` | ${meaning.replaceAll('|', '\\|')} |`),
  );
});
