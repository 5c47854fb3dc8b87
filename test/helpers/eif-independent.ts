/**
 * An EIF reader written for the tests only, from the format description and nothing in
 * builder/: it parses the header with plain offsets, recomputes the CRC over the file bytes
 * (header minus its CRC field, then each section header and payload in table order) with zlib,
 * and the PCRs with node:crypto. If the builder and this disagree, one of them is wrong.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';

export interface IndependentEif {
  version: number;
  flags: number;
  sections: { type: number; offset: number; size: number; payload: Buffer }[];
  storedCrc: number;
  computedCrc: number;
  pcrs: Record<string, string>;
}

const sha384 = (...parts: Buffer[]) => {
  const h = crypto.createHash('sha384');
  for (const p of parts) h.update(p);
  return h.digest();
};
export const pcrOf = (...parts: Buffer[]) => sha384(Buffer.alloc(48), sha384(...parts)).toString('hex');

export function readEifIndependently(file: string): IndependentEif {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 4) !== '.eif') throw new Error('no .eif magic');
  const count = b.readUInt16BE(26);
  const sections: IndependentEif['sections'] = [];
  let crc = zlib.crc32(b.subarray(0, 544));
  for (let i = 0; i < count; i++) {
    const offset = Number(b.readBigUInt64BE(28 + 8 * i));
    const size = Number(b.readBigUInt64BE(28 + 256 + 8 * i));
    const type = b.readUInt16BE(offset);
    if (Number(b.readBigUInt64BE(offset + 4)) !== size) throw new Error(`section ${i}: size disagrees with the header`);
    const payload = b.subarray(offset + 12, offset + 12 + size);
    crc = zlib.crc32(b.subarray(offset, offset + 12 + size), crc);
    sections.push({ type, offset, size, payload });
  }
  const of = (t: number) => sections.filter((s) => s.type === t).map((s) => s.payload);
  const [kernel] = of(1);
  const [cmdline] = of(2);
  const ramdisks = of(3);
  const pcrs: Record<string, string> = {
    PCR0: pcrOf(kernel!, cmdline!, ...ramdisks),
    PCR1: pcrOf(kernel!, cmdline!, ramdisks[0]!),
    PCR2: pcrOf(...ramdisks.slice(1)),
  };
  return { version: b.readUInt16BE(4), flags: b.readUInt16BE(6), sections, storedCrc: b.readUInt32BE(544), computedCrc: crc >>> 0, pcrs };
}
