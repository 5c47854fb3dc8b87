/**
 * `npm start` compiles only when a source is newer than the last build (scripts/build-if-stale.mjs),
 * instead of running tsc on every start. Tried on a one-file project in a temporary directory;
 * "newer" is set with explicit modification times, not by waiting.
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

const run = () => spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-if-stale.mjs'), dir], { encoding: 'utf8' });

test('builds when dist is missing or older than a source, and does nothing otherwise', () => {
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        outDir: 'dist',
        rootDir: '.',
        incremental: true,
        tsBuildInfoFile: 'dist/.tsbuildinfo',
        types: [],
        module: 'NodeNext',
      },
      include: ['*.ts'],
    }),
  );
  const source = path.join(dir, 'a.ts');
  fs.writeFileSync(source, 'export const a: number = 1;\n');

  const first = run();
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /compiling/);
  assert.ok(fs.existsSync(path.join(dir, 'dist', 'a.js')));

  const second = run();
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.stdout, '', 'nothing changed: no build');

  const built = fs.statSync(path.join(dir, 'dist', '.tsbuildinfo')).mtime;
  const later = new Date(built.getTime() + 60_000);
  fs.writeFileSync(source, 'export const a: number = 2;\n');
  fs.utimesSync(source, later, later);
  const third = run();
  assert.equal(third.status, 0, third.stderr);
  assert.match(third.stdout, /compiling/);
  assert.match(fs.readFileSync(path.join(dir, 'dist', 'a.js'), 'utf8'), /a = 2/);
});
