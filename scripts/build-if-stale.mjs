// `npm start` runs this first: compile the TypeScript only when a source is newer than the last
// build (dist/.tsbuildinfo), instead of running tsc every time (seconds of type-checking for
// nothing). A stat of each source file costs milliseconds. Usage: node scripts/build-if-stale.mjs [ROOT]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const SKIP = new Set(['node_modules', 'dist', '.git', 'native']);

/** The newest modification time among the .ts sources and build settings under `dir`. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function lastBuild() {
  try {
    return fs.statSync(path.join(root, 'dist', '.tsbuildinfo')).mtimeMs;
  } catch {
    return -1;
  }
}

const settings = ['tsconfig.json', 'package.json'].map((f) => fs.statSync(path.join(root, f)).mtimeMs);
if (Math.max(newestSource(root), ...settings) <= lastBuild()) process.exit(0);
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
console.log('enclaver-proxy: sources changed since the last build; compiling');
const started = new Date();
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
// The rest of `npm run build`: the config validators compiled ahead of time (a project without
// that step, like the one-file project of the test of this script, is compiled by tsc alone).
const precompile = path.join(root, 'scripts', 'precompile-validators.mjs');
if (fs.existsSync(precompile)) {
  const v = spawnSync(process.execPath, [precompile, root], { cwd: root, stdio: 'inherit' });
  if (v.status !== 0) process.exit(v.status ?? 1);
}
// tsc leaves .tsbuildinfo alone when no output changed (a touched file, package.json): stamp it
// with the build's start, so what was built counts as built and an edit made meanwhile does not.
fs.utimesSync(path.join(root, 'dist', '.tsbuildinfo'), started, started);
