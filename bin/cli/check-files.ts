/**
 * `--check` looks at what a config refers to on this machine, so that a missing TLS key, KMS
 * ciphertext, hosts file or app binary is reported with its file:line and YAML path now, not as a
 * bare ENOENT when the pair starts. Only `--check` does this: a config may be checked where it
 * runs, but it is also loaded by tests and tools elsewhere.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Loaded } from '../../shared/config/load.js';
import type { FileReference } from '../../shared/config/spec.js';
import type { InnerConfig } from '../../shared/config/types.js';
import { errnoOf, messageOf, type ConfigProblem } from '../../shared/errors/index.js';
import { preflightApp } from '../../proxy-inner/app/supervisor.js';

function reason(err: unknown): string {
  switch (errnoOf(err)) {
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return messageOf(err);
  }
}

/** What is wrong with one referenced file, or undefined when it is usable as the config means. */
function fileProblem(ref: FileReference): string | undefined {
  const target = ref.use === 'write' ? path.dirname(ref.file) : ref.file;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (err) {
    return ref.use === 'write' ? `${ref.file}: its directory ${target} ${reason(err)}` : `${ref.file} ${reason(err)}`;
  }
  const wantDirectory = ref.use !== 'read';
  if (stat.isDirectory() !== wantDirectory) return `${target} is ${wantDirectory ? 'not a directory' : 'a directory, not a file'}`;
  try {
    fs.accessSync(target, ref.use === 'read' ? fs.constants.R_OK : fs.constants.W_OK);
  } catch (err) {
    return `${target}: ${reason(err)}`;
  }
  return undefined;
}

function innerSide(loaded: Loaded): { side: InnerConfig; base: string[] } | undefined {
  const c = loaded.config;
  if (c.role === 'local') return { side: c.inner, base: ['inner'] };
  return c.role === 'inner' ? { side: c, base: [] } : undefined;
}

/** Every problem with the files and the app program the config refers to. */
export function checkReferencedFiles(loaded: Loaded): ConfigProblem[] {
  const problems = loaded.references.flatMap((ref) => {
    const message = fileProblem(ref);
    return message ? [loaded.problemAt(ref.path, message)] : [];
  });
  const inner = innerSide(loaded);
  const app = inner?.side.app;
  // A missing working directory is reported above (app.cwd); the program is looked up from it.
  if (inner && app && fs.existsSync(app.cwd)) {
    try {
      preflightApp(app, process.env.PATH);
    } catch (err) {
      problems.push(loaded.problemAt([...inner.base, 'app', 'command'], messageOf(err)));
    }
  }
  return problems;
}
