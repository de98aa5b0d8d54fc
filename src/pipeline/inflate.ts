/**
 * Inflate on every core: a deflated entry whose central header carries a block index (zipformat.ts)
 * is read segment by segment, and the segments are inflated side by side on libuv's thread pool,
 * the way deflate.ts compressed them. Output is handed on in order; at most `concurrency` segments
 * are in flight. Every segment must inflate to exactly its share of the entry: the last one must
 * finish the deflate stream, the others must not. An index that does not add up is not used.
 */
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { constants, inflateRaw } from 'node:zlib';
import { VerificationError } from '../core/errors.js';
import { defaultConcurrency } from './deflate.js';
import type { ArchiveReader } from '../core/storage.js';
import type { BlockIndex } from './zipformat.js';

const inflateRawAsync = promisify(inflateRaw);
/** A larger segment than deflate.ts ever writes: an index asking for it is not trusted with memory. */
const MAX_SEGMENT = 16 << 20;

export interface IndexedEntry {
  archive: ArchiveReader;
  name: string;
  /** Where the entry's compressed bytes start in the file. */
  start: number;
  compressedSize: number;
  size: number;
  index: BlockIndex;
}

/**
 * Whether the index describes the entry: segments that cover its size, lengths that add up to its
 * compressed size, and none longer than deflate can make a segment (stored blocks add 5 bytes in
 * 64 KiB), since each is read whole into memory.
 */
export function indexFits(entry: Omit<IndexedEntry, 'archive' | 'name' | 'start'>): boolean {
  const { segment, lengths } = entry.index;
  const n = lengths.length;
  const longest = segment + (segment >> 4) + 1024;
  return (
    n >= 2 &&
    segment <= MAX_SEGMENT &&
    (n - 1) * segment <= entry.size &&
    entry.size <= n * segment &&
    lengths.every((length) => length <= longest) &&
    lengths.reduce((a, b) => a + b, 0) === entry.compressedSize
  );
}

export function inflateIndexed(entry: IndexedEntry, concurrency = defaultConcurrency()): Readable {
  return Readable.from(segments(entry, concurrency), { objectMode: false, highWaterMark: 1 });
}

async function* segments(entry: IndexedEntry, concurrency: number): AsyncGenerator<Buffer> {
  const { segment, lengths } = entry.index;
  const inFlight: Promise<Buffer>[] = [];
  // Input buffers go back here once their segment is inflated: reading into the same few buffers
  // spares the page faults and garbage collections of a fresh one per segment.
  const free: Buffer[] = [];
  const release = (buffer: Buffer) => free.push(buffer);
  let position = entry.start;
  for (let i = 0; i < lengths.length; i++) {
    const length = lengths[i]!;
    let buffer = free.pop();
    if (!buffer || buffer.length < length) buffer = Buffer.allocUnsafe(Math.max(length, segment));
    const input = buffer.subarray(0, length);
    let bytesRead = 0;
    while (bytesRead < input.length) {
      const n = await entry.archive.read(input, bytesRead, input.length - bytesRead, position + bytesRead);
      if (n === 0) break;
      bytesRead += n;
    }
    if (bytesRead !== input.length) throw new VerificationError(`${entry.name}: the archive ends inside the entry's data`);
    position += input.length;
    const last = i === lengths.length - 1;
    const expected = last ? entry.size - i * segment : segment;
    const job = inflateRawAsync(input, { finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH, chunkSize: Math.max(64, expected + 1) }).then((output) => {
      if (output.length !== expected) {
        throw new VerificationError(`${entry.name}: deflate block ${i + 1} of ${lengths.length} holds ${output.length} bytes, expected ${expected}`);
      }
      return output;
    });
    const owned = buffer;
    void job.then(() => release(owned), () => undefined);
    job.catch(() => undefined); // awaited in order below; a failure surfaces there
    inFlight.push(job);
    if (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
}
