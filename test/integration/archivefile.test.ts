/**
 * The archive's write side: everything written arrives in order and whole, across many
 * background flushes; an existing file is never overwritten; a destroyed stream leaves no open
 * file behind. Hashed in a worker, its SHA-256 is the file's, however the writes were cut.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ArchiveFile } from '../../src/storage/archivefile.js';
import { tempDir } from '../support/cli.js';

// The worker runs only from the built files (a worker thread cannot load TypeScript): these tests
// use dist/, which the test setup builds.
const built = {
  archiveFile: () => import(new URL('../../dist/storage/archivefile.js', import.meta.url).href) as Promise<typeof import('../../src/storage/archivefile.js')>,
  hashWorker: () => import(new URL('../../dist/pipeline/hashworker.js', import.meta.url).href) as Promise<typeof import('../../src/pipeline/hashworker.js')>,
};
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function uneven(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [1, 7000, 1 << 20, 3 << 20, 333_333][i % 5]!;
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

const openFiles = () => readdirSync('/proc/self/fd').length;

describe('ArchiveFile', () => {
  it('writes 80 MiB of uneven chunks byte for byte, past two background flushes, with mode 0600', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.zip');
    const data = randomBytes(80 << 20);
    const before = openFiles();
    await pipeline(Readable.from(uneven(data)), new ArchiveFile(file));
    expect(readFileSync(file).equals(data)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(openFiles()).toBe(before);
  });

  it('refuses a file that already exists and leaves it untouched', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.zip');
    writeFileSync(file, 'keep me');
    await expect(pipeline(Readable.from([Buffer.from('new')]), new ArchiveFile(file))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('closes its file when destroyed mid-stream', async () => {
    const dir = tempDir();
    const before = openFiles();
    const out = new ArchiveFile(path.join(dir, 'a.zip'));
    out.write(randomBytes(1 << 20));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(openFiles()).toBe(before + 1);
    const closed = finished(out);
    out.destroy(new Error('stop'));
    await expect(closed).rejects.toThrow('stop');
    if (!out.closed) await once(out, 'close');
    expect(openFiles()).toBe(before);
  });
});

describe('ArchiveFile, hashed in a worker', () => {
  it('reports the SHA-256 of the file it wrote', async () => {
    const { ArchiveFile: Built } = await built.archiveFile();
    const file = path.join(tempDir(), 'a.zip');
    const data = randomBytes(40 << 20);
    const out = new Built(file, { hashInWorker: true });
    expect(() => out.sha256()).toThrow('not finished');
    await pipeline(Readable.from(uneven(data)), out);
    expect(readFileSync(file).equals(data)).toBe(true);
    expect(out.sha256()).toBe(sha256(data));
  });

  it('leaves no file open, whether it finishes or is destroyed mid-stream', async () => {
    const { ArchiveFile: Built } = await built.archiveFile();
    const dir = tempDir();
    const before = openFiles();
    const whole = new Built(path.join(dir, 'a.zip'), { hashInWorker: true });
    await pipeline(Readable.from(uneven(randomBytes(10 << 20))), whole);
    const broken = new Built(path.join(dir, 'b.zip'), { hashInWorker: true });
    broken.write(randomBytes(6 << 20));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = finished(broken);
    broken.destroy(new Error('stop'));
    await expect(closed).rejects.toThrow('stop');
    for (let i = 0; i < 50 && openFiles() !== before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(openFiles()).toBe(before);
  });

  it('fails the write as soon as its worker fails, not at the end', async () => {
    const { ArchiveFile: Built } = await built.archiveFile();
    const file = path.join(tempDir(), 'a.zip');
    const out = new Built(file, { hashInWorker: true });
    while (!existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 1));
    unlinkSync(file); // before the worker, starting, opens it
    const failed = finished(out);
    out.write(randomBytes(1 << 20));
    await expect(failed).rejects.toThrow(`ENOENT: no such file or directory, open '${file}'`);
  });

  it('hashes an empty archive', async () => {
    const { ArchiveFile: Built } = await built.archiveFile();
    const out = new Built(path.join(tempDir(), 'a.zip'), { hashInWorker: true });
    await pipeline(Readable.from([]), out);
    expect(out.sha256()).toBe(sha256(Buffer.alloc(0)));
  });

  it('fails when the file is shorter than the bytes said written, and on a missing file', async () => {
    const { FileHasher, hashFileInWorker } = await built.hashWorker();
    const file = path.join(tempDir(), 'short.bin');
    writeFileSync(file, randomBytes(3 << 20));
    const hasher = new FileHasher(file);
    hasher.advance(1 << 20);
    await expect(hasher.finish((3 << 20) + 5)).rejects.toThrow(`${file} ends after ${3 << 20} bytes, expected ${(3 << 20) + 5}`);
    await expect(hashFileInWorker(path.join(tempDir(), 'missing.bin'), 10)).rejects.toThrow('ENOENT');
  });

  it('hashes each range as soon as it is said to be written, before the file is complete', async () => {
    const { FileHasher } = await built.hashWorker();
    const file = path.join(tempDir(), 'growing.bin');
    const first = randomBytes(24 << 20);
    const rest = randomBytes((5 << 20) + 77);
    writeFileSync(file, first);
    let reported = 0;
    const hasher = new FileHasher(file, (n) => (reported += n));
    hasher.advance(first.length);
    for (let i = 0; i < 250 && reported < 16 << 20; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(reported).toBeGreaterThanOrEqual(16 << 20); // progress comes every 8 MiB
    appendFileSync(file, rest);
    const result = await hasher.finish(first.length + rest.length);
    expect(result).toEqual({ sha256: sha256(Buffer.concat([first, rest])), size: first.length + rest.length });
    expect(reported).toBe(first.length + rest.length);
  });

  it('hashes a whole file for verify, reporting progress that adds up to its size', async () => {
    const { hashFileInWorker } = await built.hashWorker();
    const file = path.join(tempDir(), 'whole.bin');
    const data = randomBytes((20 << 20) + 12_345);
    writeFileSync(file, data);
    let reported = 0;
    const result = await hashFileInWorker(file, data.length, (n) => (reported += n));
    expect(result).toEqual({ sha256: sha256(data), size: data.length });
    expect(reported).toBe(data.length);
  });
});
