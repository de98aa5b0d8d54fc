/**
 * A dump's bytes in large blocks. A dump tool writes to its pipe in whatever pieces it likes
 * (mongodump: about 0.6 KiB), and an export yields one line per document; every piece would
 * otherwise pay on its own for each step after it: a counting tap, two SHA-256 updates, the zip
 * writer, deflate, a write. Those costs are per chunk, not per byte: blocks of a few hundred KiB
 * make them vanish.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const BLOCK_BYTES = 256 * 1024;

/**
 * A pass-through that hands on blocks of at least `blockBytes` (a chunk that is that large on its
 * own, with nothing gathered before it, goes on as it is), and the last, smaller block when its
 * input ends. Bytes and their order are unchanged. At most one partial block is held back, and only
 * until more input or the end arrives; an error on either side destroys it like any stream.
 */
export class BlockBatcher extends Transform {
  private gathered: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly blockBytes = BLOCK_BYTES) {
    super({ writableHighWaterMark: blockBytes, readableHighWaterMark: blockBytes });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.bytes === 0 && chunk.length >= this.blockBytes) return callback(null, chunk);
    this.gathered.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.blockBytes) this.pushBlock();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes > 0) this.pushBlock();
    callback();
  }

  private pushBlock(): void {
    const block = this.gathered.length === 1 ? this.gathered[0]! : Buffer.concat(this.gathered, this.bytes);
    this.gathered = [];
    this.bytes = 0;
    this.push(block);
  }
}

/**
 * Lines (without their newline) as blocks of at most `blockBytes`, each line and its newline
 * written straight into the block's buffer: no Buffer per line. Lines arrive in groups (a batch of
 * documents, say), so that a line costs no promise of its own. A line is text, or bytes already
 * encoded as UTF-8; bytes are copied before the next line is asked for, so the producer may reuse
 * its buffer. A line too long for a block gets a block of its own. A block is not touched once it
 * is yielded.
 */
export async function* lineBlocks(groups: AsyncIterable<Iterable<string | Uint8Array>>, blockBytes = BLOCK_BYTES): AsyncGenerator<Buffer> {
  let block = Buffer.allocUnsafe(blockBytes);
  let used = 0;
  for await (const group of groups) {
    for (const line of group) {
      const text = typeof line === 'string';
      // A UTF-16 code unit takes at most 3 bytes in UTF-8: measure exactly only near the block's end.
      const room = blockBytes - used;
      const bytes = !text ? line.length + 1 : line.length * 3 + 1 <= room ? 0 : Buffer.byteLength(line) + 1;
      if (bytes > room) {
        if (used > 0) {
          yield block.subarray(0, used);
          block = Buffer.allocUnsafe(blockBytes);
          used = 0;
        }
        if (bytes > blockBytes) {
          yield text ? Buffer.from(`${line}\n`) : Buffer.concat([line, NEWLINE]);
          continue;
        }
      }
      if (text) used += block.write(line, used, 'utf8');
      else {
        block.set(line, used);
        used += line.length;
      }
      block[used++] = 0x0a;
    }
  }
  if (used > 0) yield block.subarray(0, used);
}

const NEWLINE = Buffer.from('\n');
