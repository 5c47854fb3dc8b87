/** Paths into the read-only real test vectors that live beside the project (../shared/vectors). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/helpers → project root → ../shared/vectors */
export const VECTORS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../shared/vectors');

export function vectorBytes(relative: string): Buffer {
  const raw = fs.readFileSync(path.join(VECTORS_DIR, relative));
  return relative.endsWith('.b64') ? Buffer.from(raw.toString('ascii').trim(), 'base64') : raw;
}

export function vectorJson<T>(relative: string): T {
  return JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, relative), 'utf8')) as T;
}
