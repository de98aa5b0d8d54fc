/**
 * Compressing an uncompressed custom-format archive (`pg_dump -Fc -Z0`) into the archive pg_dump
 * itself writes with `-Fc -Z<level>`, on every core. pg_dump compresses on one core; this does the
 * same work with ParallelDeflate, and the result is still an ordinary pg_dump archive: pg_restore
 * reads it as it reads pg_dump's own, and the zip entry holding it is stored, so `verify` hashes
 * the compressed bytes instead of inflating the whole dump.
 *
 * What pg_dump does (pg_backup_custom.c, compress_io.c; compress_gzip.c from PostgreSQL 16): the
 * header says the data is compressed (before archive version 1.15 the int compression level, from
 * 1.15 a byte naming the method, 1 = gzip); the TOC is unchanged; every table's data, and every
 * large object, is one zlib stream (RFC 1950: a 2-byte header, deflate, the Adler-32 of the data)
 * cut into chunks, each an int length and its bytes, ended by a zero length. Only the framing of
 * the chunks changes here; every other byte is handed on as it came.
 *
 * An archive this reader does not know (a newer format version) is handed on unchanged: still a
 * valid dump, only uncompressed. A level of 0 does the same.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { IHasher } from 'hash-wasm';
import { OperationError, errorMessage } from '../../core/errors.js';
import { ParallelDeflate } from '../../pipeline/deflate.js';
import { BLOCK_DATA, COMPRESSION_BYTE, PgCustomReader, type Toc, writeInt } from './pgcustom.js';

/** pg_dump's method byte for gzip (pg_compress_algorithm: 0 none, 1 gzip, 2 lz4, 3 zstd). */
const METHOD_GZIP = 1;
/**
 * Data is gathered into runs of this size before it is hashed and compressed: without compression
 * pg_dump writes every row as a chunk of its own, and each step costs per call, not per byte.
 */
const RUN_BYTES = 256 * 1024;

type Op = { kind: 'raw'; bytes: Buffer } | { kind: 'start' } | { kind: 'data'; run: Buffer; length: number } | { kind: 'end' };

function compressError(cause: unknown): OperationError {
  const hint = 'Set "compression": {"level": 0} on this target to store its dumps as pg_dump writes them.';
  return new OperationError(`could not compress pg_dump's output: ${errorMessage(cause)}`, { cause, hint });
}

/** The 2-byte zlib header deflateInit writes for `level`: a 32 KiB window, the level's hint, the check bits. */
export function zlibHeader(level: number): Buffer {
  const hint = level < 2 ? 0 : level < 6 ? 1 : level === 6 ? 2 : 3;
  const cmf = 0x78;
  let flg = hint << 6;
  flg += 31 - ((cmf * 256 + flg) % 31);
  return Buffer.from([cmf, flg]);
}

export class PgCustomCompressor extends Transform {
  private readonly reader: PgCustomReader;
  /** What the reader found in the chunk at hand, to be written in order. */
  private ops: Op[] = [];
  private passThrough: boolean;
  /** Why the dump was handed on uncompressed, when it was not read (level 0 is not a reason). */
  storedAsIs: string | undefined;
  private intSize = 4;
  private readonly deflate: ParallelDeflate;
  private adler: IHasher | undefined;
  /** The current stream's data not yet handed on: `used` bytes of `run`. */
  private run: Buffer | undefined;
  private used = 0;
  /** Runs handed on and done with, reused: the data is copied, never reallocated. */
  private readonly freeRuns: Buffer[] = [];

  constructor(private readonly level: number) {
    super({ highWaterMark: 1 << 20 });
    this.passThrough = level === 0;
    this.deflate = new ParallelDeflate(level, async (compressed) => this.chunk(compressed));
    this.reader = new PgCustomReader({
      head: (bytes, toc) => this.ops.push({ kind: 'raw', bytes: this.compressedHead(bytes, toc) }),
      block: (type, dumpId) => {
        this.ops.push({ kind: 'raw', bytes: Buffer.concat([Buffer.from([type]), writeInt(dumpId, this.intSize)]) });
        if (type === BLOCK_DATA) this.ops.push({ kind: 'start' });
      },
      blob: (oid) => this.ops.push({ kind: 'raw', bytes: writeInt(oid, this.intSize) }, { kind: 'start' }),
      data: (chunk, start, end) => this.gather(chunk, start, end),
      dataEnd: () => {
        this.flushRun();
        this.ops.push({ kind: 'end' });
      },
      blobsEnd: () => this.ops.push({ kind: 'raw', bytes: writeInt(0, this.intSize) }),
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.passThrough) return callback(null, chunk);
    this.reader.write(chunk);
    this.settle(false, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.passThrough) return callback();
    this.reader.finish();
    this.settle(true, callback);
  }

  /**
   * After the reader has seen more input (or its end): write what it found. A dump that ends before
   * its TOC does goes on as it came; one cut inside a block ends there (pg_dump's exit status says why).
   */
  private settle(ending: boolean, callback: TransformCallback): void {
    const { toc, error } = this.reader;
    if (error && toc) return callback(compressError(error));
    if (error || (ending && !toc)) {
      // Not an archive this reader knows: the dump goes into the archive as pg_dump wrote it.
      if (error) this.storedAsIs = error.message;
      // Until the TOC is read, the reader holds every byte: they go on unchanged.
      this.passThrough = true;
      for (const held of this.reader.unread()) this.push(held);
      return callback();
    }
    const ops = this.ops;
    this.ops = [];
    this.perform(ops).then(
      () => callback(),
      (failure: unknown) => callback(compressError(failure)),
    );
  }

  /** Copy data into the current run; a full run goes on as one op. */
  private gather(chunk: Buffer, start: number, end: number): void {
    while (start < end) {
      this.run ??= this.freeRuns.pop() ?? Buffer.allocUnsafe(RUN_BYTES);
      const copied = chunk.copy(this.run, this.used, start, end);
      this.used += copied;
      start += copied;
      if (this.used === RUN_BYTES) this.flushRun();
    }
  }

  private flushRun(): void {
    if (!this.run) return;
    this.ops.push({ kind: 'data', run: this.run, length: this.used });
    this.run = undefined;
    this.used = 0;
  }

  private async perform(ops: Op[]): Promise<void> {
    for (const op of ops) {
      switch (op.kind) {
        case 'raw':
          this.push(op.bytes);
          break;
        case 'start':
          // Loaded on the first data block: other commands do not pay its 30 ms of start-up.
          this.adler ??= await (await import('hash-wasm')).createAdler32();
          this.adler.init();
          this.chunk(zlibHeader(this.level));
          break;
        case 'data': {
          const bytes = op.run.subarray(0, op.length);
          this.adler!.update(bytes);
          await this.deflate.write(bytes); // copies it
          this.freeRuns.push(op.run);
          break;
        }
        case 'end': {
          await this.deflate.end();
          this.chunk(Buffer.from(this.adler!.digest('binary')));
          this.push(writeInt(0, this.intSize));
        }
      }
    }
  }

  /** One chunk of compressed data, framed as pg_dump frames it: its length, then its bytes. */
  private chunk(bytes: Buffer): void {
    this.push(writeInt(bytes.length, this.intSize));
    this.push(bytes);
  }

  /** The header and TOC with the header's compression field saying gzip, at this level. */
  private compressedHead(bytes: Buffer, toc: Toc): Buffer {
    this.intSize = toc.intSize;
    const head = Buffer.from(bytes);
    if (toc.version >= COMPRESSION_BYTE) head[toc.compressionAt] = METHOD_GZIP;
    else writeInt(this.level, toc.intSize).copy(head, toc.compressionAt);
    return head;
  }
}
