/**
 * The archive's write side: everything written arrives in order and whole, across many
 * background flushes; an existing file is never overwritten; a destroyed stream leaves no open
 * file behind.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ArchiveFile } from '../../src/storage/archivefile.js';
import { tempDir } from '../support/cli.js';

const openFiles = () => readdirSync('/proc/self/fd').length;

describe('ArchiveFile', () => {
  it('writes 80 MiB of uneven chunks byte for byte, past two background flushes, with mode 0600', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.zip');
    const data = randomBytes(80 << 20);
    const chunks: Buffer[] = [];
    for (let at = 0, i = 0; at < data.length; i++) {
      const n = [1, 7000, 1 << 20, 3 << 20, 333_333][i % 5]!;
      chunks.push(data.subarray(at, at + n));
      at += n;
    }
    const before = openFiles();
    await pipeline(Readable.from(chunks), new ArchiveFile(file));
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
