/**
 * `enclaver-proxy describe-eif FILE [--json]`: everything in an EIF, recomputed from its bytes:
 * header, sections and sizes, CRC (checked), PCRs, metadata, and the signature with its
 * certificate (checked against the certificate and against this image's PCR0).
 * Exit 0 when the CRC and any signature check out, 1 when not, 2 on usage errors.
 */
import { parseArgs } from 'node:util';
import { readEif, type EifDescription } from '../../builder/eif/reader.js';
import { BuildError } from '../../builder/errors.js';

export const DESCRIBE_EIF_USAGE = `Usage: enclaver-proxy describe-eif FILE [--json]

Reads an enclave image file (EIF) and prints its header, sections, CRC (verified), PCRs
(recomputed from the bytes), metadata and signature (verified). --json prints one JSON object.
`;

function humanBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export function describeEifJson(d: EifDescription): Record<string, unknown> {
  return {
    File: d.file,
    Bytes: d.bytes,
    Version: d.header.version,
    Arch: d.arch,
    Flags: d.header.flags,
    DefaultMemoryMiB: Number(d.header.defaultMemory / (1024n * 1024n)),
    DefaultCpus: Number(d.header.defaultCpus),
    Crc32: { Stored: d.crc.stored.toString(16).padStart(8, '0'), Computed: d.crc.computed.toString(16).padStart(8, '0'), Ok: d.crc.ok },
    Sections: d.sections.map((s) => ({ Index: s.index, Type: s.kind, Offset: s.offset, Size: s.size })),
    Measurements: { HashAlgorithm: 'Sha384 { ... }', ...d.pcrs },
    Metadata: d.metadata,
    Signature: d.signature
      ? {
          Subject: d.signature.subject,
          Issuer: d.signature.issuer,
          NotBefore: d.signature.validFrom,
          NotAfter: d.signature.validTo,
          Fingerprint256: d.signature.fingerprint256,
          Algorithm: d.signature.algorithm,
          SignatureValid: d.signature.signatureValid,
          CoversThisImage: d.signature.coversThisImage,
          Certificate: d.signature.certificatePem,
        }
      : null,
  };
}

function describeText(d: EifDescription): string {
  const lines = [
    `${d.file}: EIF version ${d.header.version}, ${d.arch}, ${humanBytes(d.bytes)} (${d.bytes} bytes)`,
    `default memory ${Number(d.header.defaultMemory / (1024n * 1024n))} MiB, ${d.header.defaultCpus} CPUs`,
    `CRC32 ${d.crc.stored.toString(16).padStart(8, '0')} ${d.crc.ok ? 'ok' : `MISMATCH (bytes give ${d.crc.computed.toString(16).padStart(8, '0')})`}`,
    'Sections:',
    ...d.sections.map(
      (s) =>
        `  ${String(s.index).padStart(2)}  ${s.kind.padEnd(9)} offset ${String(s.offset).padStart(10)}  size ${String(s.size).padStart(10)}  (${humanBytes(s.size)})`,
    ),
    'Measurements (SHA-384):',
    ...Object.entries(d.pcrs).map(([k, v]) => `  ${k}: ${v}`),
  ];
  const meta = d.metadata as { ImageName?: string; ImageVersion?: string; BuildMetadata?: Record<string, string> } | null;
  if (meta && typeof meta === 'object') {
    lines.push('Metadata:', `  ImageName: ${meta.ImageName ?? ''}`, `  ImageVersion: ${meta.ImageVersion ?? ''}`);
    for (const [k, v] of Object.entries(meta.BuildMetadata ?? {})) lines.push(`  ${k}: ${v}`);
  }
  if (d.signature) {
    const s = d.signature;
    lines.push(
      'Signature:',
      `  subject: ${s.subject.replace(/\n/g, ', ')}`,
      `  issuer: ${s.issuer.replace(/\n/g, ', ')}`,
      `  valid: ${s.validFrom} → ${s.validTo}`,
      `  certificate SHA-256: ${s.fingerprint256}`,
      `  signature: ${s.algorithm}, ${s.signatureValid ? 'valid' : 'INVALID'}; ${s.coversThisImage ? 'signs this PCR0' : `signs PCR0 ${s.signedPcr0}, NOT this image's`}`,
    );
  } else {
    lines.push('Signature: none (unsigned image, no PCR8)');
  }
  return `${lines.join('\n')}\n`;
}

export async function describeEifCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    process.stderr.write(`enclaver-proxy describe-eif: ${(err as Error).message}\n\n${DESCRIBE_EIF_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(DESCRIBE_EIF_USAGE);
    return 0;
  }
  const [file] = parsed.positionals;
  if (parsed.positionals.length !== 1 || file === undefined) {
    process.stderr.write(`enclaver-proxy describe-eif: give exactly one EIF file\n\n${DESCRIBE_EIF_USAGE}`);
    return 2;
  }
  let d: EifDescription;
  try {
    d = await readEif(file);
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    process.stderr.write(`enclaver-proxy describe-eif: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(parsed.values.json ? `${JSON.stringify(describeEifJson(d), null, 2)}\n` : describeText(d));
  const signatureOk = !d.signature || (d.signature.signatureValid && d.signature.coversThisImage);
  return d.crc.ok && signatureOk ? 0 : 1;
}
