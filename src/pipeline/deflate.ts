/**
 * Deflate on every core, the way pigz does. The input is cut into blocks that are compressed side
 * by side on libuv's thread pool; each block is primed with the last 32 KiB of the block before
 * as its dictionary and ends with a sync flush on a byte boundary, so the blocks concatenate into
 * one ordinary deflate stream (only the last is finished) that any inflater reads, at nearly the
 * ratio of a single stream. Output is handed on in order; at most `concurrency` blocks are in
 * flight, so memory stays at a few blocks whatever the input.
 */
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { constants, deflateRaw } from 'node:zlib';

const deflateRawAsync = promisify(deflateRaw);
const WINDOW = 32 * 1024;

const DEFLATE_BLOCK = 1 << 20;

/**
 * Blocks in flight: one per core plus one, so a core never waits while this thread hands on a
 * block; but never the whole of libuv's thread pool, which file I/O needs too.
 */
function defaultConcurrency(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(availableParallelism() + 1, pool - 1));
}

export class ParallelDeflate {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
  private window: Buffer = Buffer.alloc(0);
  /** Compressed bytes handed on so far. */
  written = 0;

  constructor(
    private readonly level: number,
    private readonly emit: (compressed: Buffer) => Promise<void>,
    private readonly concurrency = defaultConcurrency(),
    private readonly blockSize = DEFLATE_BLOCK,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes >= this.blockSize) {
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
      const block = all.subarray(0, this.blockSize);
      const rest = all.subarray(this.blockSize);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      await this.submit(block, false);
    }
  }

  /** Compress what is left as the final block and hand on everything still in flight. */
  async end(): Promise<void> {
    const last = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.submit(last, true);
    while (this.inFlight.length > 0) await this.emitNext();
  }

  private async submit(block: Buffer, last: boolean): Promise<void> {
    const options = {
      level: this.level,
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      ...(this.window.length > 0 ? { dictionary: this.window } : {}),
    };
    const job = deflateRawAsync(block, options);
    job.catch(() => undefined); // awaited in order by emitNext; a failure surfaces there
    this.inFlight.push(job);
    this.window = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([this.window, block]).subarray(-WINDOW);
    while (this.inFlight.length >= this.concurrency) await this.emitNext();
  }

  private async emitNext(): Promise<void> {
    const compressed = await this.inFlight.shift()!;
    this.written += compressed.length;
    await this.emit(compressed);
  }
}
