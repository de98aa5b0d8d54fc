import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ParallelDeflate } from '../../src/pipeline/deflate.js';
import { GzipStream } from '../../src/pipeline/gzip.js';
import { through } from '../support/streams.js';

const gzip = (data: Buffer, chunk: number, level: number) => through(data, chunk, new GzipStream(level));

/** Text that compresses (several deflate blocks of 1 MiB), then noise that does not. */
const text = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `line ${i} of a dump, ${(i * 7919) % 1000}\n`).join(''));
const data = Buffer.concat([text, randomBytes(300_000)]);

describe('GzipStream', () => {
  it.each([
    [1, 6],
    [4093, 6],
    [1 << 20, 1],
    [1 << 22, 0],
  ])('makes a gzip stream that zlib and gzip(1) read back byte for byte (%i-byte chunks, level %i)', async (chunk, level) => {
    expect(data.length).toBeGreaterThan(3 << 20);
    const gz = await gzip(data, chunk, level);
    expect(gunzipSync(gz).equals(data)).toBe(true);
    expect(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 1 << 26 }).equals(data)).toBe(true);
    if (level > 0) expect(gz.length).toBeLessThan(data.length / 2);
  });

  it('gzips nothing into a valid empty stream', async () => {
    const gz = await gzip(Buffer.alloc(0), 1, 6);
    expect(gunzipSync(gz).length).toBe(0);
    execFileSync('gzip', ['-t'], { input: gz });
  });

  it('keeps the length in its trailer modulo 2^32, as gzip does', async () => {
    const gz = await gzip(text, 65536, 6);
    expect(gz.readUInt32LE(gz.length - 4)).toBe(text.length);
  });
});

describe('ParallelDeflate', () => {
  it('starts a new stream after end: a large, a small and an empty one through one instance each inflate alone', async () => {
    const streams: Buffer[][] = [];
    let current: Buffer[] = [];
    const deflate = new ParallelDeflate(6, async (compressed) => {
      current.push(compressed);
    });
    const inputs = [data, text.subarray(0, 10_000), Buffer.alloc(0), data.subarray(5)];
    for (const input of inputs) {
      for (let at = 0; at < input.length; at += 65536) await deflate.write(input.subarray(at, at + 65536));
      await deflate.end();
      streams.push(current);
      current = [];
    }
    streams.forEach((pieces, i) => expect(inflateRawSync(Buffer.concat(pieces)).equals(inputs[i]!)).toBe(true));
  });
});
