/**
 * The EIF container layout (aws-nitro-enclaves-image-format, version 4), big-endian throughout:
 * a 548-byte header (magic `.eif`, version, flags, default memory and CPUs, section count, 32
 * section offsets and 32 section sizes, an unused word, CRC-32 of everything else), then
 * sections, each a 12-byte header (type, flags, payload size) followed by the payload.
 * Section offsets point at the section header; section sizes count the payload only.
 */
import { BuildError } from '../errors.js';

export const EIF_MAGIC = Buffer.from('.eif', 'latin1');
export const EIF_VERSION = 4;
export const MAX_SECTIONS = 32;
export const HEADER_BYTES = 548;
/** The CRC field is the header's last 4 bytes; the CRC covers every byte of the file but these. */
export const CRC_FIELD_OFFSET = HEADER_BYTES - 4;
export const SECTION_HEADER_BYTES = 12;
/** Header flag bit: the image is for aarch64 (nitro-cli sets it from the image's architecture). */
export const FLAG_ARM64 = 0x1;
export const DEFAULT_MEMORY_BYTES = 1024n * 1024n * 1024n;
export const DEFAULT_CPUS = 2n;

export const SectionType = { kernel: 1, cmdline: 2, ramdisk: 3, signature: 4, metadata: 5 } as const;
export type SectionKind = keyof typeof SectionType;

export function sectionKindOf(type: number): SectionKind | 'unknown' {
  for (const [kind, value] of Object.entries(SectionType)) if (value === type) return kind as SectionKind;
  return 'unknown';
}

export interface EifHeader {
  version: number;
  flags: number;
  defaultMemory: bigint;
  defaultCpus: bigint;
  sections: { offset: bigint; size: bigint }[];
  crc32: number;
}

/** Encode a header; `crc32` is written too (0 while the CRC is still unknown). */
export function encodeHeader(h: EifHeader): Buffer {
  if (h.sections.length > MAX_SECTIONS)
    throw new BuildError('eif_invalid', `an EIF holds at most ${MAX_SECTIONS} sections, not ${h.sections.length}`);
  const b = Buffer.alloc(HEADER_BYTES);
  EIF_MAGIC.copy(b, 0);
  b.writeUInt16BE(h.version, 4);
  b.writeUInt16BE(h.flags, 6);
  b.writeBigUInt64BE(h.defaultMemory, 8);
  b.writeBigUInt64BE(h.defaultCpus, 16);
  b.writeUInt16BE(0, 24);
  b.writeUInt16BE(h.sections.length, 26);
  h.sections.forEach((s, i) => {
    b.writeBigUInt64BE(s.offset, 28 + 8 * i);
    b.writeBigUInt64BE(s.size, 28 + 8 * MAX_SECTIONS + 8 * i);
  });
  b.writeUInt32BE(0, CRC_FIELD_OFFSET - 4);
  b.writeUInt32BE(h.crc32, CRC_FIELD_OFFSET);
  return b;
}

export function decodeHeader(b: Buffer, file: string): EifHeader {
  if (b.length < HEADER_BYTES)
    throw new BuildError('eif_invalid', `${file}: ${b.length} bytes is too short for an EIF header (${HEADER_BYTES})`, { file });
  if (!b.subarray(0, 4).equals(EIF_MAGIC)) throw new BuildError('eif_invalid', `${file}: not an EIF (magic is not ".eif")`, { file });
  const count = b.readUInt16BE(26);
  if (count > MAX_SECTIONS)
    throw new BuildError('eif_invalid', `${file}: header declares ${count} sections, more than ${MAX_SECTIONS}`, { file });
  const sections = [];
  for (let i = 0; i < count; i++) {
    sections.push({ offset: b.readBigUInt64BE(28 + 8 * i), size: b.readBigUInt64BE(28 + 8 * MAX_SECTIONS + 8 * i) });
  }
  return {
    version: b.readUInt16BE(4),
    flags: b.readUInt16BE(6),
    defaultMemory: b.readBigUInt64BE(8),
    defaultCpus: b.readBigUInt64BE(16),
    sections,
    crc32: b.readUInt32BE(CRC_FIELD_OFFSET),
  };
}

export function encodeSectionHeader(type: number, size: bigint): Buffer {
  const b = Buffer.alloc(SECTION_HEADER_BYTES);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(0, 2);
  b.writeBigUInt64BE(size, 4);
  return b;
}

export function decodeSectionHeader(b: Buffer): { type: number; flags: number; size: bigint } {
  return { type: b.readUInt16BE(0), flags: b.readUInt16BE(2), size: b.readBigUInt64BE(4) };
}
