/**
 * A gzip stream (RFC 1952) compressed on every core: ParallelDeflate's single deflate stream between
 * a gzip header and a trailer (CRC-32 and length of the input). Any gunzip reads it, e.g.
 * `mongorestore --gzip`, as it would read gzip's own output.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { ParallelDeflate } from './deflate.js';

/** Magic, deflate, no flags, no modification time, no extra flags, OS "Unix". */
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);

export class GzipStream extends Transform {
  private readonly deflate: ParallelDeflate;
  private crc = 0;
  private size = 0;
  private started = false;

  constructor(level: number) {
    super({ highWaterMark: 1 << 20 });
    this.deflate = new ParallelDeflate(level, async (compressed) => {
      this.push(compressed);
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.start();
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
    this.deflate.write(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.start();
    this.deflate.end().then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size % 2 ** 32, 4);
      callback(null, trailer);
    }, callback);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.push(HEADER);
  }
}
