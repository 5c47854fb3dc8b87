/**
 * Pull-style reading of exact byte counts from a chunk stream (a layer being decompressed): the
 * tar parser asks for a 512-byte header, then streams or skips the body, so a 1 GiB layer passes
 * through in chunk-sized pieces and is never held whole. `null` from `read` means the stream
 * ended exactly at a boundary; ending inside a record is the caller's "truncated".
 */
export class ByteReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;
  consumed = 0;

  /** `seek` lets a file-backed source skip bodies without reading them (archive indexing). */
  constructor(
    private readonly source: AsyncIterator<Buffer>,
    private readonly seek?: (n: number) => void,
  ) {}

  private async fill(n: number): Promise<void> {
    while (this.pendingBytes < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.pending.push(next.value);
        this.pendingBytes += next.value.length;
      }
    }
  }

  private take(n: number): Buffer {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const head = this.pending[0];
      // Callers take only what `fill` brought in; a gap here is a stream that ended early.
      if (head === undefined) throw new TruncatedError(this.consumed + n - need);
      if (head.length <= need) {
        out.push(head);
        this.pending.shift();
        need -= head.length;
      } else {
        out.push(head.subarray(0, need));
        this.pending[0] = head.subarray(need);
        need = 0;
      }
    }
    this.pendingBytes -= n;
    this.consumed += n;
    const [only] = out;
    return out.length === 1 && only !== undefined ? only : Buffer.concat(out);
  }

  /** Exactly n bytes; null at a clean end; throws 'truncated' when the stream ends inside them. */
  async read(n: number): Promise<Buffer | null> {
    await this.fill(n);
    if (this.pendingBytes === 0 && this.done) return null;
    if (this.pendingBytes < n) throw new TruncatedError(this.consumed + this.pendingBytes);
    return this.take(n);
  }

  /** Yields exactly n bytes in the source's chunking. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pendingBytes === 0) await this.fill(1);
      const head = this.pending[0];
      if (this.pendingBytes === 0 || head === undefined) throw new TruncatedError(this.consumed);
      const k = Math.min(left, head.length);
      left -= k;
      yield this.take(k);
    }
  }

  async skip(n: number): Promise<void> {
    if (this.seek && n > this.pendingBytes) {
      const beyond = n - this.pendingBytes;
      this.consumed += this.pendingBytes;
      this.pending = [];
      this.pendingBytes = 0;
      this.seek(beyond);
      this.consumed += beyond;
      return;
    }
    for await (const _ of this.stream(n)) {
      /* discard */
    }
  }
}

export class TruncatedError extends Error {
  constructor(readonly at: number) {
    super(`stream ends early, after ${at} bytes`);
  }
}
