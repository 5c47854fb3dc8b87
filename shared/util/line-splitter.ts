/**
 * Bytes → lines for streams that are read as text (an app's stdout/stderr). A line longer than
 * `maxLine` is cut into pieces so one runaway line cannot grow a buffer without bound.
 */
export class LineSplitter {
  private partial = '';
  constructor(private readonly maxLine = 16 * 1024) {}

  push(chunk: Buffer | string): string[] {
    const text = this.partial + chunk.toString();
    const parts = text.split('\n');
    // split() returns at least one element: the text after the last newline.
    this.partial = parts.pop() ?? '';
    const lines: string[] = [];
    for (const p of parts) lines.push(...this.cut(p.endsWith('\r') ? p.slice(0, -1) : p));
    while (this.partial.length > this.maxLine) {
      lines.push(this.partial.slice(0, this.maxLine));
      this.partial = this.partial.slice(this.maxLine);
    }
    return lines;
  }

  /** What is left when the stream ends without a final newline. */
  end(): string[] {
    const rest = this.partial;
    this.partial = '';
    return rest ? this.cut(rest) : [];
  }

  private cut(line: string): string[] {
    if (line.length <= this.maxLine) return [line];
    const out: string[] = [];
    for (let i = 0; i < line.length; i += this.maxLine) out.push(line.slice(i, i + this.maxLine));
    return out;
  }
}
