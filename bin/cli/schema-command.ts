/** `enclaver-proxy schema [--write]`: print the JSON Schema; regenerate the published copies. */
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigDocs } from '../../shared/config/docs.js';
import { manifestSchema } from '../../shared/config/enclaver-manifest.js';
import { configSchema } from '../../shared/config/schema.js';

export const SCHEMA_FILE = 'schema/enclaver-proxy.schema.json';
export const DOCS_FILE = 'docs/config.md';

export function schemaText(): string {
  return `${JSON.stringify(configSchema, null, 2)}\n`;
}

export function docsText(): string {
  return renderConfigDocs(configSchema, manifestSchema);
}

export function schemaCommand(opts: { write: boolean; root: string }): number {
  process.stdout.write(schemaText());
  if (opts.write) {
    fs.mkdirSync(path.join(opts.root, 'schema'), { recursive: true });
    fs.writeFileSync(path.join(opts.root, SCHEMA_FILE), schemaText());
    fs.writeFileSync(path.join(opts.root, DOCS_FILE), docsText());
    process.stderr.write(`wrote ${SCHEMA_FILE} and ${DOCS_FILE}\n`);
  }
  return 0;
}
