/**
 * docs/config.md, generated from the schema so the reference cannot drift from what the loader
 * accepts (a test regenerates it and fails when the committed file differs).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- walks a JSON Schema */

function typeOf(s: any): string {
  if (s.enum) return s.enum.map((v: unknown) => `\`${String(v)}\``).join(' \\| ');
  if (s.oneOf) return s.oneOf.map(typeOf).join(' or ');
  const t = Array.isArray(s.type) ? s.type.join(' or ') : (s.type ?? 'any');
  if (t === 'array' && s.items) return `list of ${typeOf(s.items)}`;
  if (t === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties)
    return `map of ${typeOf(s.additionalProperties)}`;
  return t;
}

/** A property's schema, with a `$ref` to the root's `definitions` followed. */
function resolved(root: any, s: any): any {
  const ref = typeof s?.$ref === 'string' ? /^#\/definitions\/(.+)$/.exec(s.$ref) : null;
  return ref ? root.definitions[ref[1] as string] : s;
}

function rows(root: any, schema: any, prefix: string, out: string[], required: string[] = []): void {
  for (const [key, ref] of Object.entries<any>(schema.properties ?? {})) {
    const sub = resolved(root, ref);
    const path = `${prefix}${key}`;
    const def =
      sub.default !== undefined
        ? `\`${typeof sub.default === 'string' ? sub.default : JSON.stringify(sub.default)}\``
        : required.includes(key)
          ? '**required**'
          : '';
    out.push(`| \`${path}\` | ${typeOf(sub)} | ${def} | ${(sub.description ?? '').replace(/\|/g, '\\|')} |`);
    const item = sub.type === 'array' && sub.items?.properties ? sub.items : undefined;
    if (item) rows(root, item, `${path}[].`, out, item.required);
    else if (sub.properties) rows(root, sub, `${path}.`, out, sub.required);
  }
}

export function renderConfigDocs(configSchema: any, manifestSchema: any): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from shared/config/schema.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    configSchema.description,
    'The machine-readable schema is `schema/enclaver-proxy.schema.json` (also printed by `enclaver-proxy schema`).',
    'Under `role: local`, `outer:` and `inner:` each take the side keys below (everything except `role`, `log`, `runtime_dir`).',
    '',
    '| key | type | default | meaning |',
    '|---|---|---|---|',
  ];
  const top = {
    ...configSchema,
    properties: Object.fromEntries(Object.entries<any>(configSchema.properties).filter(([k]) => k !== 'outer' && k !== 'inner')),
  };
  rows(configSchema, top, '', out, configSchema.required);
  out.push(
    '',
    '## Enclaver manifests',
    '',
    'An Enclaver `enclaver.yaml` is accepted as the config too (pick the side with `--role`). Its keys:',
    '',
    '| key | type | default | meaning |',
    '|---|---|---|---|',
  );
  rows(manifestSchema, manifestSchema, '', out, manifestSchema.required);
  out.push('');
  return out.join('\n');
}
