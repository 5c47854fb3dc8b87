/**
 * Every complete config shown in the docs (a YAML block with a `role:`) is valid, so the docs
 * cannot drift from what the loader accepts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfigSource } from '../../../shared/config/load.js';
import { ConfigSource } from '../../../shared/config/source.js';
import { ConfigError, formatProblem } from '../../../shared/errors/index.js';
import { ROOT } from '../../helpers/paths.js';

test('complete configs in README.md and docs/ load without a problem', () => {
  const files = [
    'README.md',
    ...fs
      .readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  let checked = 0;
  for (const file of files) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const [i, block] of [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m, n) => [n, m[1]!] as const)) {
      if (!/^role: /m.test(block)) continue;
      try {
        loadConfigSource(ConfigSource.parse(`${file} (yaml block ${i + 1})`, block), {
          appArgv: /^role: (inner|local)/m.test(block) ? ['/bin/true'] : undefined,
        });
      } catch (err) {
        if (err instanceof ConfigError) assert.fail(err.problems.map(formatProblem).join('\n'));
        throw err;
      }
      checked += 1;
    }
  }
  assert.ok(checked >= 3, `only ${checked} complete configs found in the docs`);
});
