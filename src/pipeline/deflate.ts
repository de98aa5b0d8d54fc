/**
 * Deflate on every core, the way pigz does. The input is cut into 1 MiB blocks that are compressed
 * side by side on libuv's thread pool; each ends with a sync flush on a byte boundary, so the
 * blocks concatenate into one ordinary deflate stream (only the last is finished) that any
 * inflater reads. The blocks are independent, as with `pigz --independent`: none refers back into
 * the block before, so a reader that knows where they start can inflate them side by side too
 * (inflate.ts). That costs about 0.1% of the ratio of a single stream (measured on the benchmark's
 * SQLite file) and saves copying a dictionary per block. With `index`, the compressed length of
 * every block is kept for that reader (`blocks`). Output is handed on in order; at most
 * `concurrency` blocks are in flight, so memory stays at a few blocks whatever the input. After
 * `end`, the next `write` starts a new stream, reusing the blocks: many small streams cost no more
 * than one.
 */
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { constants, deflateRaw, deflateRawSync } from 'node:zlib';

const deflateRawAsync = promisify(deflateRaw);

const DEFLATE_BLOCK = 1 << 20;
const OUTPUT_CHUNK = 256 * 1024;
/** A whole stream this small is compressed here and now: a trip to the thread pool would cost more. */
const SYNC_BELOW = 64 * 1024;

/**
 * Blocks in flight: one per core plus one, so a core never waits while this thread hands on a
 * block; but never the whole of libuv's thread pool, which file I/O needs too.
 */
export function defaultConcurrency(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(availableParallelism() + 1, pool - 1));
}

export class ParallelDeflate {
  /**
   * Input blocks whose compression is done, reused: the input is copied once and never reallocated.
   * A writer of many small entries passes one list to each entry's deflate, so that thousands of
   * small files do not allocate a 1 MiB block each.
   */
  private readonly free: Buffer[];
  private block: Buffer | undefined;
  private used = 0;
  private readonly inFlight: { job: Promise<Buffer>; block: Buffer | undefined }[] = [];
  private readonly concurrency = defaultConcurrency();
  /** Input bytes per block (the last block of a stream holds the rest). */
  readonly blockSize = DEFLATE_BLOCK;
  /** Compressed bytes handed on so far. */
  written = 0;
  /** With `index`: the compressed length of every block handed on, in order. */
  readonly blocks: number[] | undefined;

  constructor(
    private readonly level: number,
    private readonly emit: (compressed: Buffer) => Promise<void>,
    options: { index?: boolean; free?: Buffer[] } = {},
  ) {
    this.blocks = options.index ? [] : undefined;
    this.free = options.free ?? [];
  }

  async write(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      this.block ??= this.free.pop() ?? Buffer.allocUnsafe(this.blockSize);
      const copied = chunk.copy(this.block, this.used, offset);
      this.used += copied;
      offset += copied;
      if (this.used === this.blockSize) await this.submit(false);
    }
  }

  /** Compress what is left as the final block and hand on everything still in flight. */
  async end(): Promise<void> {
    await this.submit(true);
    while (this.inFlight.length > 0) await this.emitNext();
  }

  private async submit(last: boolean): Promise<void> {
    const block = this.block;
    const input = block ? block.subarray(0, this.used) : Buffer.alloc(0);
    this.block = undefined;
    this.used = 0;
    const options = {
      level: this.level,
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      // zlib hands its output back to this thread one chunk at a time (16 KiB by default): a large
      // chunk makes a block's compression one trip to the pool instead of a dozen. It is allocated
      // whole, so a small input gets one of about its size.
      chunkSize: Math.min(OUTPUT_CHUNK, Math.max(16 << 10, input.length + 1024)),
    };
    const job = last && this.inFlight.length === 0 && input.length < SYNC_BELOW ? Promise.resolve(deflateRawSync(input, options)) : deflateRawAsync(input, options);
    job.catch(() => undefined); // awaited in order by emitNext; a failure surfaces there
    this.inFlight.push({ job, block });
    while (this.inFlight.length >= this.concurrency) await this.emitNext();
  }

  private async emitNext(): Promise<void> {
    const { job, block } = this.inFlight.shift()!;
    const compressed = await job;
    if (block) this.free.push(block);
    this.written += compressed.length;
    this.blocks?.push(compressed.length);
    await this.emit(compressed);
  }
}
