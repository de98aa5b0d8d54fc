/**
 * The start of each line of a dump's text, gathered across chunks: enough to classify a line (a
 * statement, a section comment) without holding the line itself, whatever its length.
 */

/** A line is classified by its first bytes: enough for any statement prefix with a quoted name. */
const HEAD_MAX = 1024;

const NL = 0x0a;

/** Collects the start of each line (up to HEAD_MAX bytes, or to its newline) for classification. */
export class LineHead {
  private readonly buffer = Buffer.alloc(HEAD_MAX);
  length = 0;

  /** Take bytes of `chunk` from `offset`; returns where it stopped. The head is complete when `ready`. */
  take(chunk: Buffer, offset: number): number {
    const newline = chunk.indexOf(NL, offset);
    const end = Math.min(newline === -1 ? chunk.length : newline + 1, offset + HEAD_MAX - this.length);
    chunk.copy(this.buffer, this.length, offset, end);
    this.length += end - offset;
    return end;
  }

  get ready(): boolean {
    return this.length === HEAD_MAX || (this.length > 0 && this.buffer[this.length - 1] === NL);
  }

  get endsLine(): boolean {
    return this.length > 0 && this.buffer[this.length - 1] === NL;
  }

  text(): string {
    return this.buffer.toString('utf8', 0, this.length);
  }

  /** The head's bytes from `start` (a copy: the buffer is reused), and a reset. */
  drain(start = 0): Buffer {
    const out = Buffer.from(this.buffer.subarray(start, this.length));
    this.length = 0;
    return out;
  }
}
