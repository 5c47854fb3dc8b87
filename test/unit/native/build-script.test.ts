/**
 * `npm install` runs native/build.mjs. node-gyp's output (about 50 lines) goes to a log file and the
 * script prints one line; when the build fails, that line names the log. Run here on a copy of the
 * script and binding.gyp without node-addon-api next to them, so gyp fails at once and the real
 * addon in native/build/ is left alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/process.js';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a failed addon build prints one line that names the build log, which holds the output', () => {
  for (const file of ['build.mjs', 'binding.gyp']) fs.copyFileSync(path.join(ROOT, 'native', file), path.join(dir, file));
  const r = spawnSync(process.execPath, [path.join(dir, 'build.mjs')], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: '' },
  });
  assert.equal(r.status, 0, 'a failed build never fails npm install');
  const output = `${r.stdout}${r.stderr}`;
  const logFile = path.join(dir, 'build.log');
  assert.equal(output.split('\n').filter((l) => l !== '').length, 1, `one line, not gyp's output:\n${output}`);
  assert.match(
    output,
    new RegExp(
      `native addon build failed .*; the JS pump will be used\\. Build log: ${logFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`,
    ),
  );
  assert.match(fs.readFileSync(logFile, 'utf8'), /gyp/, 'the log holds what node-gyp printed');
});
