/** A pass-through that hashes (SHA-256) and counts the bytes flowing through it. */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';

export class HashCounter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly onBytes?: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** SHA-256 and size of everything a stream yields, without keeping it. */
export async function hashStream(stream: NodeJS.ReadableStream, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    onBytes?.(chunk.length);
  }
  return { sha256: hash.digest('hex'), size };
}

/** SHA-256 and size of a whole file, read in 1 MiB chunks. */
export function hashFile(file: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  return hashStream(createReadStream(file, { highWaterMark: 1 << 20 }), onBytes);
}
