/**
 * Counting Django fixture objects per model as `dumpdata` output streams past: the output is a JSON
 * array of `{"model": "app.model", "pk": ..., "fields": {...}}`. A byte-level scanner tracks nesting
 * and strings, and reads only the short strings at object level (keys and the `model` value), so
 * memory stays flat whatever the dump's size.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_CAPTURE = 512;

export class ModelCounter {
  private depth = 0;
  private inString = false;
  private escape = false;
  private capture: number[] | undefined;
  private expectKey = false;
  private lastKey: string | undefined;
  private readonly counts = new Map<string, number>();

  write(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (byte === BACKSLASH) this.escape = true;
        else if (byte === QUOTE) {
          this.inString = false;
          this.endString();
          continue;
        }
        if (this.capture) {
          if (this.capture.length < MAX_CAPTURE) this.capture.push(byte);
          else this.capture = undefined;
        }
        continue;
      }
      switch (byte) {
        case QUOTE:
          this.inString = true;
          this.capture = this.depth === 2 ? [] : undefined;
          break;
        case 0x7b: // {
        case 0x5b: // [
          this.depth++;
          if (this.depth === 2 && byte === 0x7b) this.expectKey = true;
          break;
        case 0x7d: // }
        case 0x5d: // ]
          this.depth--;
          break;
        case 0x2c: // ,
          if (this.depth === 2) this.expectKey = true;
          break;
        case 0x3a: // :
          if (this.depth === 2) this.expectKey = false;
          break;
      }
    }
  }

  /** Objects per model label, in the order first seen. */
  result(): Map<string, number> {
    return this.counts;
  }

  private endString(): void {
    if (this.depth !== 2 || !this.capture) return;
    const text = Buffer.from(this.capture).toString('utf8');
    this.capture = undefined;
    if (this.expectKey) this.lastKey = text;
    else if (this.lastKey === 'model') this.counts.set(text, (this.counts.get(text) ?? 0) + 1);
  }
}
