/** A pass-through that hashes (SHA-256) and counts the bytes flowing through it. */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
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

const READ_BYTES = 1 << 20;

/**
 * SHA-256 of the first `size` bytes of a file, read into two reused 1 MiB buffers, the next read
 * in flight while this one is hashed: no garbage per chunk, and this thread is free between reads.
 */
export async function hashFileRange(file: string, size: number, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(READ_BYTES), Buffer.allocUnsafe(READ_BYTES)];
    const read = (position: number, buffer: Buffer) => handle.read(buffer, 0, Math.min(READ_BYTES, size - position), position);
    let position = 0;
    let next = size > 0 ? read(0, buffers[0]!) : undefined;
    for (let turn = 0; next; turn ^= 1) {
      const { bytesRead } = await next;
      if (bytesRead === 0) throw new Error(`${file} ends after ${position} bytes, expected ${size}`);
      const done = position + bytesRead;
      next = done < size ? read(done, buffers[turn ^ 1]!) : undefined;
      hash.update(buffers[turn]!.subarray(0, bytesRead));
      onBytes?.(bytesRead);
      position = done;
    }
    return { sha256: hash.digest('hex'), size: position };
  } finally {
    await handle.close();
  }
}
