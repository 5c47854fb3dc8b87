/**
 * Streams an EIF to disk in one pass: header placeholder, kernel, cmdline, metadata, then each
 * ramdisk as its producer writes it, then (when signing) the signature over PCR0. Each byte is
 * written once, measured (PCRs) and CRC'd as it goes; the header (whose offsets and sizes are
 * only known at the end) is written last, and its CRC is joined to the sections' with
 * `crc32Combine`, so nothing is re-read. Memory: one write buffer.
 *
 * The file is written at `tmpPath`; the caller renames it into place only when everything
 * succeeded, so a failed build never leaves a half-written EIF at the output path.
 */
import fs from 'node:fs/promises';
import { crc32, crc32Combine } from './crc32.js';
import {
  CRC_FIELD_OFFSET,
  DEFAULT_CPUS,
  DEFAULT_MEMORY_BYTES,
  EIF_VERSION,
  FLAG_ARM64,
  HEADER_BYTES,
  SECTION_HEADER_BYTES,
  SectionType,
  encodeHeader,
  encodeSectionHeader,
} from './format.js';
import { PcrMeasurer, type Pcrs } from './pcr.js';
import { certificateDer, signatureSection, type EifSigning } from './signature.js';
import type { ByteSink } from '../cpio/newc.js';

const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

export interface EifBootInputs {
  kernel: Buffer;
  /** Stored as given: the caller trims the blob's trailing newline like nitro-cli does. */
  cmdline: Buffer;
  metadata: Buffer;
  arch: 'x86_64' | 'aarch64';
  defaultMemoryBytes?: bigint;
  defaultCpus?: bigint;
}

interface WrittenSection {
  offset: bigint;
  header: Buffer;
  size: bigint;
  payloadCrc: number;
}

export interface EifResult {
  pcrs: Pcrs;
  crc32: number;
  bytes: bigint;
}

export class EifWriter implements ByteSink {
  private readonly buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private buffered = 0;
  /** File position of the next byte handed to `write`. */
  private position = BigInt(HEADER_BYTES);
  private readonly sections: WrittenSection[] = [];
  private open: { offset: bigint; type: number; start: bigint; crc: number } | undefined;
  private readonly measurer = new PcrMeasurer();

  private constructor(
    private readonly file: fs.FileHandle,
    private readonly inputs: EifBootInputs,
  ) {}

  static async create(tmpPath: string, inputs: EifBootInputs): Promise<EifWriter> {
    const file = await fs.open(tmpPath, 'w', 0o644);
    const writer = new EifWriter(file, inputs);
    try {
      await writer.fixedSection(SectionType.kernel, 'kernel', inputs.kernel);
      await writer.fixedSection(SectionType.cmdline, 'cmdline', inputs.cmdline);
      await writer.fixedSection(SectionType.metadata, 'other', inputs.metadata);
    } catch (err) {
      // The caller never sees this writer, so it cannot abort it: release it here.
      await writer.abort();
      throw err;
    }
    return writer;
  }

  private async fixedSection(type: number, kind: 'kernel' | 'cmdline' | 'ramdisk' | 'other', payload: Buffer): Promise<void> {
    this.begin(type, kind);
    await this.write(payload);
    await this.end();
  }

  private begin(type: number, kind: 'kernel' | 'cmdline' | 'ramdisk' | 'other'): void {
    if (this.open) throw new Error('EIF writer: a section is already open');
    const offset = this.position;
    // The section header's size is unknown until the payload ends: skip its 12 bytes now.
    this.position += BigInt(SECTION_HEADER_BYTES);
    this.open = { offset, type, start: this.position, crc: 0 };
    this.measurer.beginSection(kind);
  }

  private async end(): Promise<void> {
    await this.flush();
    const open = this.open;
    if (!open) throw new Error('EIF writer: no section open');
    this.open = undefined;
    const size = this.position - open.start;
    const header = encodeSectionHeader(open.type, size);
    await this.file.write(header, 0, header.length, Number(open.offset));
    this.sections.push({ offset: open.offset, header, size, payloadCrc: open.crc });
  }

  /** Section payload bytes, batched into large writes. */
  async write(chunk: Buffer): Promise<void> {
    let from = 0;
    while (from < chunk.length) {
      const n = Math.min(chunk.length - from, WRITE_BUFFER_BYTES - this.buffered);
      chunk.copy(this.buffer, this.buffered, from, from + n);
      this.buffered += n;
      from += n;
      if (this.buffered === WRITE_BUFFER_BYTES) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const data = this.buffer.subarray(0, this.buffered);
    await this.measurer.update(data);
    if (this.open) this.open.crc = crc32(data, this.open.crc);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, Number(this.position) + done);
      done += bytesWritten;
    }
    this.position += BigInt(data.length);
    this.buffered = 0;
  }

  /** Stream one ramdisk: the first is the bootstrap (PCR1), the rest are the app's (PCR2). */
  async ramdisk(produce: (sink: ByteSink) => Promise<void>): Promise<void> {
    this.begin(SectionType.ramdisk, 'ramdisk');
    await produce(this);
    await this.end();
  }

  async finish(signing?: EifSigning): Promise<EifResult> {
    const certificatePem = signing?.kind === 'sign' ? signing.signer.certificatePem : signing?.certificatePem;
    const pcrs = await this.measurer.finish(certificatePem ? certificateDer(certificatePem) : undefined);
    if (signing?.kind === 'sign')
      await this.fixedSection(SectionType.signature, 'other', await signatureSection(signing.signer, pcrs.PCR0));
    const header = encodeHeader({
      version: EIF_VERSION,
      flags: this.inputs.arch === 'aarch64' ? FLAG_ARM64 : 0,
      defaultMemory: this.inputs.defaultMemoryBytes ?? DEFAULT_MEMORY_BYTES,
      defaultCpus: this.inputs.defaultCpus ?? DEFAULT_CPUS,
      sections: this.sections.map((s) => ({ offset: s.offset, size: s.size })),
      crc32: 0,
    });
    let crc = crc32(header.subarray(0, CRC_FIELD_OFFSET));
    for (const s of this.sections) crc = crc32Combine(crc32(s.header, crc), s.payloadCrc, s.size);
    header.writeUInt32BE(crc, CRC_FIELD_OFFSET);
    await this.file.write(header, 0, header.length, 0);
    await this.file.sync();
    await this.file.close();
    return { pcrs, crc32: crc, bytes: this.position };
  }

  /** Close without finishing (the caller deletes the temp file). */
  async abort(): Promise<void> {
    await this.measurer.close();
    await this.file.close().catch(() => undefined);
  }
}
