/**
 * Newline-delimited JSON framing with a size limit. Pure: feed it chunks, get complete lines back.
 * A line past the limit is reported once as oversized and skipped up to its newline, so one bad
 * frame never poisons the ones after it.
 */

export type Frame = { kind: 'line'; line: string } | { kind: 'oversized'; bytes: number };

export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(private readonly maxBytes: number) {}

  /** Takes the next chunk of the stream and returns the frames it completes. */
  push(chunk: Buffer | string): Frame[] {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const out: Frame[] = [];
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(0x0a, start);
      const end = nl === -1 ? buf.length : nl;
      const piece = buf.subarray(start, end);
      if (!this.skipping) {
        this.size += piece.length;
        if (this.size > this.maxBytes) {
          out.push({ kind: 'oversized', bytes: this.size });
          this.skipping = true;
          this.parts = [];
        } else {
          this.parts.push(piece);
        }
      }
      if (nl === -1) break;
      if (!this.skipping) {
        const line = Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '');
        if (line.trim() !== '') out.push({ kind: 'line', line });
      }
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      start = nl + 1;
    }
    return out;
  }
}

/**
 * The header of a channel whose first line is one and whose bytes after it are something else (an
 * attach's terminal, a move's tar stream): feeds `chunk` to `splitter` a line at a time and stops
 * at the first frame, giving it and the bytes after its newline. Null while there is none yet:
 * blank lines are no frame, here as on every other channel.
 */
export function headerOf(splitter: LineSplitter, chunk: Buffer): { frame: Frame; rest: Buffer } | null {
  let start = 0;
  while (start < chunk.length) {
    const nl = chunk.indexOf(0x0a, start);
    const end = nl === -1 ? chunk.length : nl + 1;
    const [frame] = splitter.push(chunk.subarray(start, end));
    if (frame) return { frame, rest: chunk.subarray(end) };
    start = end;
  }
  return null;
}

/** One frame as a line to write. */
export function encodeFrame(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
