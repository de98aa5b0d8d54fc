/**
 * Random access to an archive object through ranged GETs. A zip is read from its end (the central
 * directory), then entry by entry; the small reads that finds (headers, the directory) go through
 * a few cached 1 MiB blocks, so listing a zip of thousands of entries costs a handful of GETs, and
 * large reads and entry streams are ranged GETs of their own. A stream that loses its connection
 * resumes where it stopped, a few times, before it fails.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArchiveReader } from '../core/storage.js';
import type { S3Storage } from './s3.js';
import { S3Failure, isMissing } from './s3errors.js';
import { VerificationError } from '../core/errors.js';

const BLOCK = 1 << 20;
const CACHED_BLOCKS = 4;
const RESUMES = 4;

export async function openS3Archive(storage: S3Storage, key: string): Promise<ArchiveReader> {
  const { bucket } = storage.options;
  const head = await storage.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch((error: unknown) => {
    if (isMissing(error)) throw new VerificationError(`archive s3://${bucket}/${key} is missing (storage ${storage.name})`, { cause: error });
    throw new S3Failure(storage.name, bucket, key, 'HeadObject', error);
  });
  const size = head.ContentLength ?? 0;
  const etag = head.ETag;
  const blocks = new Map<number, Promise<Buffer>>();

  /** The bytes [start, end) in one GET, pinned to the object that was opened. */
  async function get(start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const object = await storage.call('GetObject', key, () =>
      storage.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}`, ...(etag ? { IfMatch: etag } : {}) })),
    );
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    if (bytes.length !== end - start) throw new S3Failure(storage.name, bucket, key, 'GetObject', new Error(`asked for ${end - start} bytes at ${start}, got ${bytes.length}`));
    return bytes;
  }

  function block(index: number): Promise<Buffer> {
    let cached = blocks.get(index);
    if (cached) {
      blocks.delete(index);
      blocks.set(index, cached);
      return cached;
    }
    cached = get(index * BLOCK, Math.min(size, (index + 1) * BLOCK));
    cached.catch(() => blocks.delete(index));
    blocks.set(index, cached);
    while (blocks.size > CACHED_BLOCKS) blocks.delete(blocks.keys().next().value!);
    return cached;
  }

  async function* range(start: number, end: number): AsyncGenerator<Buffer> {
    let position = start;
    let resumes = 0;
    while (position < end) {
      try {
        const object = await storage.call('GetObject', key, () =>
          storage.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${position}-${end - 1}`, ...(etag ? { IfMatch: etag } : {}) })),
        );
        for await (const chunk of object.Body as Readable) {
          const bytes = chunk as Buffer;
          const wanted = Math.min(bytes.length, end - position);
          position += wanted;
          yield wanted === bytes.length ? bytes : bytes.subarray(0, wanted);
          resumes = 0;
        }
        if (position < end) throw new Error(`the object ended at byte ${position}, expected ${end}`);
      } catch (error) {
        if (resumes >= RESUMES || error instanceof S3Failure) {
          throw error instanceof S3Failure ? error : new S3Failure(storage.name, bucket, key, 'GetObject', error);
        }
        resumes++;
        await sleep(200 * 2 ** resumes);
      }
    }
  }

  return {
    name: `s3://${bucket}/${key}`,
    size,
    localPath: undefined,
    async read(buffer, offset, length, position) {
      const end = Math.min(size, position + length);
      if (end <= position) return 0;
      if (end - position >= BLOCK) {
        const bytes = await get(position, end);
        bytes.copy(buffer, offset);
        return bytes.length;
      }
      let copied = 0;
      for (let at = position; at < end; ) {
        const index = Math.floor(at / BLOCK);
        const data = await block(index);
        const from = at - index * BLOCK;
        const n = Math.min(data.length - from, end - at);
        data.copy(buffer, offset + copied, from, from + n);
        copied += n;
        at += n;
      }
      return copied;
    },
    stream: (start, end) => Readable.from(range(start, Math.min(end, size)), { objectMode: false, highWaterMark: 1 << 20 }),
    async close() {
      blocks.clear();
    },
  };
}
