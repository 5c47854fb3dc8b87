// `npm run build` runs this after tsc: ajv's standalone code for the config schemas, beside the
// module that loads it (dist/shared/config/validate.js), so that no schema is compiled at start-up.
// Usage: node scripts/precompile-validators.mjs [ROOT]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const dir = path.join(root, 'dist', 'shared', 'config');
const { precompiledValidatorsSource } = await import(pathToFileURL(path.join(dir, 'precompile.js')).href);
const { PRECOMPILED_FILE } = await import(pathToFileURL(path.join(dir, 'validate.js')).href);
fs.writeFileSync(path.join(dir, PRECOMPILED_FILE), precompiledValidatorsSource());
