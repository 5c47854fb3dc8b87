// `npm test` runs this: it lists the compiled `*.test.js` files under dist/test and hands them to
// `node --test` by name. Why not `node --test dist/test/`: on Node 20 a directory argument is
// walked (and every .js file under a `test` folder, helpers included, is loaded as a test file),
// while since Node 21 a positional argument is a glob, so a directory matches no file at all and
// the suite fails. Explicit file names mean the same thing on every Node line (20, 22, 24, 26).
//
//   npm test                          the whole suite
//   npm test -- unit/pump cli         only the files whose path contains one of the words
//   npm test -- --test-name-pattern=x other arguments go to `node --test` unchanged
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST_FILE = /\.test\.js$/;

/** Every compiled test file under `dir`, sorted so runs list them in the same order. */
function testFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...testFiles(full));
    else if (TEST_FILE.test(entry.name)) found.push(full);
  }
  return found.sort();
}

const compiledTests = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const runnerOptions = args.filter((a) => a.startsWith('-'));
const pathWords = args.filter((a) => !a.startsWith('-'));
const root = process.cwd();
const files = testFiles(compiledTests)
  .map((f) => path.relative(root, f))
  .filter((f) => pathWords.length === 0 || pathWords.some((w) => f.includes(w)));
if (files.length === 0) {
  console.error(`no test file under ${path.relative(root, compiledTests)} matches ${pathWords.join(' ')}; run \`npm run build\` first?`);
  process.exit(1);
}

// Defaults, each unless the caller gave its own:
// - two files at once (the machines we run on have 2 cores);
// - a hung test fails by name after 5 minutes instead of holding the run until CI's own limit
//   (tests that legitimately take longer, such as booting an EIF under QEMU, set their own timeout);
// - the spec reporter on every Node line (Node 20 defaults to TAP when not on a terminal): it ends
//   with the list of failing tests, which is what a CI log's tail should show.
// Not --test-force-exit: on Node 22 and 26 it ends a file's process while the file still has tests
// to run, and the run reports fewer tests and no failure (seen here: 58 of 75 tests, 1 run in 3).
const defaults: [string, string][] = [
  ['--test-concurrency', '--test-concurrency=2'],
  ['--test-timeout', '--test-timeout=300000'],
  ['--test-reporter', '--test-reporter=spec'],
];
const chosen = defaults.filter(([flag]) => !runnerOptions.some((o) => o.startsWith(flag))).map(([, option]) => option);
const child = spawn(process.execPath, ['--test', ...chosen, ...runnerOptions, ...files], { stdio: 'inherit' });
// Ctrl-C reaches the child through the terminal's process group; a SIGTERM sent to the runner alone
// is passed on. Either way the runner waits for the child and exits as it did.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => {
  process.exitCode = code ?? 128 + (signal ? os.constants.signals[signal] : 0);
});
