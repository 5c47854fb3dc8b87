/** Paths into the real test vectors, copied into test/fixtures/vectors (see its README). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/helpers → project root → test/fixtures/vectors */
export const VECTORS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/vectors');
/** The originals beside the project, when this checkout has them. */
export const ORIGINAL_VECTORS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../shared/vectors');

export function vectorBytes(relative: string): Buffer {
  const raw = fs.readFileSync(path.join(VECTORS_DIR, relative));
  return relative.endsWith('.b64') ? Buffer.from(raw.toString('ascii').trim(), 'base64') : raw;
}

export function vectorJson<T>(relative: string): T {
  return JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, relative), 'utf8')) as T;
}
