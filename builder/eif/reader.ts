/**
 * Reads an EIF from disk without trusting it: walks the header's section table, checks each
 * section header against it, streams every payload once to recompute the CRC and the PCRs, and
 * decodes the metadata (JSON) and signature (certificate, COSE signature over PCR0). Bounded
 * memory: payloads other than metadata and signature are never held whole.
 */
import fs from 'node:fs/promises';
import { crc32 } from './crc32.js';
import {
  CRC_FIELD_OFFSET,
  HEADER_BYTES,
  SECTION_HEADER_BYTES,
  decodeHeader,
  decodeSectionHeader,
  sectionKindOf,
  type EifHeader,
  type SectionKind,
} from './format.js';
import { PcrMeasurer, type Pcrs } from './pcr.js';
import { checkSignatureSection, type SignatureCheck } from './signature.js';
import { BuildError } from '../errors.js';

const READ_CHUNK = 4 * 1024 * 1024;
/** Metadata and signature are read whole; anything bigger than this is not a real one. */
const SMALL_SECTION_LIMIT = 16 * 1024 * 1024;

export interface EifSection {
  index: number;
  kind: SectionKind | 'unknown';
  type: number;
  offset: number;
  size: number;
}

export interface EifDescription {
  file: string;
  bytes: number;
  header: EifHeader;
  arch: 'x86_64' | 'aarch64';
  sections: EifSection[];
  crc: { stored: number; computed: number; ok: boolean };
  pcrs: Pcrs;
  metadata: unknown;
  /** Present when signed; `coversThisImage` is true when the signed PCR0 is this image's PCR0. */
  signature: (SignatureCheck & { coversThisImage: boolean }) | undefined;
}

async function readExactly(file: fs.FileHandle, length: number, position: number, what: string, path: string): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(out, done, length - done, position + done);
    if (bytesRead === 0)
      throw new BuildError('eif_invalid', `${path}: truncated: ${what} needs ${length} bytes at offset ${position}, the file ends first`, {
        file: path,
      });
    done += bytesRead;
  }
  return out;
}

export async function readEif(path: string): Promise<EifDescription> {
  let file: fs.FileHandle;
  try {
    file = await fs.open(path, 'r');
  } catch (err) {
    throw new BuildError('eif_invalid', `${path}: cannot open the EIF (${(err as Error).message})`, { file: path }, { cause: err });
  }
  const measurer = new PcrMeasurer();
  try {
    const { size: bytes } = await file.stat();
    const headerBytes = await readExactly(file, HEADER_BYTES, 0, 'the header', path);
    const header = decodeHeader(headerBytes, path);
    let crc = crc32(headerBytes.subarray(0, CRC_FIELD_OFFSET));
    const sections: EifSection[] = [];
    let metadata: unknown = null;
    let signatureBytes: Buffer | undefined;
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    for (const [index, entry] of header.sections.entries()) {
      const offset = Number(entry.offset);
      const sectionHeaderBytes = await readExactly(file, SECTION_HEADER_BYTES, offset, `section ${index}'s header`, path);
      const sh = decodeSectionHeader(sectionHeaderBytes);
      if (sh.size !== entry.size)
        throw new BuildError('eif_invalid', `${path}: section ${index}: size ${sh.size} in its header, ${entry.size} in the EIF header`, {
          file: path,
          index,
        });
      const size = Number(sh.size);
      if (offset + SECTION_HEADER_BYTES + size > bytes)
        throw new BuildError(
          'eif_invalid',
          `${path}: truncated: section ${index} (${sectionKindOf(sh.type)}) ends at ${offset + SECTION_HEADER_BYTES + size}, the file is ${bytes} bytes`,
          { file: path, index },
        );
      crc = crc32(sectionHeaderBytes, crc);
      const kind = sectionKindOf(sh.type);
      sections.push({ index, kind, type: sh.type, offset, size });
      measurer.beginSection(kind === 'kernel' || kind === 'cmdline' || kind === 'ramdisk' ? kind : 'other');
      const keep = kind === 'metadata' || kind === 'signature';
      if (keep && size > SMALL_SECTION_LIMIT)
        throw new BuildError('eif_invalid', `${path}: ${kind} section of ${size} bytes is implausibly large`, { file: path });
      const kept: Buffer[] = [];
      for (let done = 0; done < size;) {
        const n = Math.min(READ_CHUNK, size - done);
        const { bytesRead } = await file.read(chunk, 0, n, offset + SECTION_HEADER_BYTES + done);
        if (bytesRead === 0) throw new BuildError('eif_invalid', `${path}: truncated inside section ${index}`, { file: path, index });
        const part = chunk.subarray(0, bytesRead);
        crc = crc32(part, crc);
        await measurer.update(part);
        if (keep) kept.push(Buffer.from(part));
        done += bytesRead;
      }
      if (kind === 'metadata') {
        try {
          metadata = JSON.parse(Buffer.concat(kept).toString('utf8'));
        } catch {
          throw new BuildError('eif_invalid', `${path}: metadata section is not JSON`, { file: path });
        }
      }
      if (kind === 'signature') signatureBytes = Buffer.concat(kept);
    }
    if (!sections.some((s) => s.kind === 'kernel')) throw new BuildError('eif_invalid', `${path}: no kernel section`, { file: path });
    if (!sections.some((s) => s.kind === 'ramdisk')) throw new BuildError('eif_invalid', `${path}: no ramdisk section`, { file: path });
    const signature = signatureBytes ? checkSignatureSection(signatureBytes, path) : undefined;
    const pcrs = await measurer.finish();
    if (signature) pcrs.PCR8 = signature.pcr8;
    return {
      file: path,
      bytes,
      header,
      arch: header.flags & 0x1 ? 'aarch64' : 'x86_64',
      sections,
      crc: { stored: header.crc32, computed: crc >>> 0, ok: header.crc32 === crc >>> 0 },
      pcrs,
      metadata,
      signature: signature ? { ...signature, coversThisImage: signature.signedPcr0 === pcrs.PCR0 } : undefined,
    };
  } finally {
    await measurer.close();
    await file.close();
  }
}
