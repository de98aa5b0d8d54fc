/**
 * The zip writer against three independent readers: yauzl (what backupkit reads with), Info-ZIP's
 * unzip and Python's zipfile, which both check every entry's CRC-32. Each test writes a real archive
 * and compares what comes back byte for byte, zip64 included.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { ZipReader } from '../../src/pipeline/zipreader.js';
import { ZipWriter } from '../../src/pipeline/zipwriter.js';
import { ArchiveFile } from '../../src/storage/archivefile.js';
import { tempDir } from '../support/cli.js';

const PYTHON = '/usr/bin/python3';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Prose-like text that deflates about 3:1, `size` bytes. */
function words(size: number): Buffer {
  const vocabulary = Array.from({ length: 2000 }, (_, i) => `w${(i * 7919).toString(36)}`);
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const word = `${vocabulary[(i * 2654435761) % 2000]!} `;
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** `data` as a stream of uneven chunks, so block boundaries fall anywhere. */
function chunked(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [1, 7000, 65536, 1 << 20, 333333][i % 5]!;
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(chunks);
}

/** What Python's zipfile sees: testzip() (every CRC) and each entry's method, size and mode. */
function python(file: string): { bad: string | null; entries: Record<string, { method: number; size: number; mode: number }> } {
  const script = [
    'import json, sys, zipfile',
    'z = zipfile.ZipFile(sys.argv[1])',
    'print(json.dumps({"bad": z.testzip(), "entries": {i.filename: {"method": i.compress_type, "size": i.file_size, "mode": i.external_attr >> 16} for i in z.infolist()}}))',
  ].join('\n');
  return JSON.parse(execFileSync(PYTHON, ['-c', script, file], { encoding: 'utf8', maxBuffer: 1 << 24 })) as ReturnType<typeof python>;
}

async function write(file: string, level: number, fill: (zip: ZipWriter) => Promise<void>, forceZip64 = false) {
  const zip = new ZipWriter(createWriteStream(file), level, undefined, { forceZip64 });
  await fill(zip);
  return zip.finish();
}

describe('zip writer', () => {
  const text = words(5 * 1024 * 1024 + 123);
  const binary = randomBytes(3 * 1024 * 1024 + 7);
  const modified = new Date('2024-02-29T13:37:41Z');

  for (const [label, level, forceZip64] of [['deflated', 6, false], ['stored', 0, false], ['zip64 records', 1, true]] as const) {
    it(`writes ${label} entries that yauzl, unzip and Python read back byte for byte`, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'a.zip');
      const records: Record<string, string> = {};
      const archive = await write(
        file,
        level,
        async (zip) => {
          for (const record of [
            await zip.add('db/text.txt', chunked(text), { compressed: false }),
            await zip.add('db/dump.bin', chunked(binary), { compressed: true }),
            await zip.add('db/empty', Readable.from([]), { compressed: false }),
            await zip.add('files/0/ünïcode name.txt', Readable.from([Buffer.from('héllo\n')]), { compressed: false, mode: 0o600, date: modified }),
            await zip.addSymlink('files/0/link', 'ünïcode name.txt', 0o777),
            await zip.addBuffer('manifest.json', Buffer.from('{"a":1}\n'), { compressed: false }),
          ]) {
            records[record.path] = record.sha256;
          }
          await zip.addDirectory('files/0/sub', 0o750, modified);
        },
        forceZip64,
      );

      const bytes = readFileSync(file);
      expect(archive).toEqual({ size: bytes.length, sha256: sha256(bytes) });
      expect(records).toEqual({
        'db/text.txt': sha256(text),
        'db/dump.bin': sha256(binary),
        'db/empty': sha256(Buffer.alloc(0)),
        'files/0/ünïcode name.txt': sha256(Buffer.from('héllo\n')),
        'files/0/link': sha256(Buffer.from('ünïcode name.txt')),
        'manifest.json': sha256(Buffer.from('{"a":1}\n')),
      });
      expect(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(forceZip64);

      const reader = await ZipReader.open(file);
      try {
        expect((await readAll(reader, 'db/text.txt')).equals(text)).toBe(true);
        expect((await readAll(reader, 'db/dump.bin')).equals(binary)).toBe(true);
        expect((await readAll(reader, 'db/empty')).length).toBe(0);
        expect(reader.entries.get('files/0/ünïcode name.txt')).toMatchObject({ type: 'file', mode: 0o600, modified });
        expect(reader.entries.get('files/0/link')).toMatchObject({ type: 'symlink', mode: 0o777 });
        expect(reader.entries.get('files/0/sub/')).toMatchObject({ type: 'directory', mode: 0o750, modified });
        expect(reader.entries.get('db/dump.bin')!.compressedSize).toBe(binary.length);
        const textEntry = reader.entries.get('db/text.txt')!;
        if (level === 0) expect(textEntry.compressedSize).toBe(text.length);
        else expect(textEntry.compressedSize).toBeLessThan(text.length / 2);
      } finally {
        reader.close();
      }

      const seen = python(file);
      expect(seen.bad).toBeNull();
      expect(seen.entries['db/text.txt']).toEqual({ method: level === 0 ? 0 : 8, size: text.length, mode: 0o100644 });
      expect(seen.entries['db/dump.bin']).toMatchObject({ method: 0, size: binary.length });
      expect(seen.entries['files/0/link']!.mode).toBe(0o120777);
      expect(seen.entries['files/0/sub/']!.mode).toBe(0o040750);

      execFileSync('unzip', ['-tq', file]);
      const out = path.join(dir, 'out');
      execFileSync('unzip', ['-q', file, '-d', out]);
      expect(readFileSync(path.join(out, 'db/text.txt')).equals(text)).toBe(true);
      expect(readFileSync(path.join(out, 'files/0/ünïcode name.txt'), 'utf8')).toBe('héllo\n');
      expect(readlinkSync(path.join(out, 'files/0/link'))).toBe('ünïcode name.txt');
      expect(statSync(path.join(out, 'files/0/ünïcode name.txt')).mtime).toEqual(modified);
      expect(lstatSync(path.join(out, 'files/0/sub')).isDirectory()).toBe(true);
    });
  }

  it('writes zip64 sizes and offsets for an entry over 4 GiB', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'big.zip');
    const block = Buffer.alloc(8 << 20, 0x5a);
    const blocks = 513; // 4 GiB + 8 MiB
    const size = block.length * blocks;
    const bigHash = createHash('sha256');
    for (let i = 0; i < blocks; i++) bigHash.update(block);
    let records: string[] = [];
    const archive = await write(file, 0, async (zip) => {
      const big = await zip.add('db/big.bin', Readable.from((function* () { for (let i = 0; i < blocks; i++) yield block; })()), { compressed: true });
      const after = await zip.add('db/after.txt', Readable.from([Buffer.from('after 4 GiB\n')]), { compressed: false });
      records = [big.sha256, String(big.size), after.sha256];
    });
    expect(archive.size).toBe(statSync(file).size);
    expect(records).toEqual([bigHash.digest('hex'), String(size), sha256(Buffer.from('after 4 GiB\n'))]);

    const reader = await ZipReader.open(file);
    try {
      expect(reader.entries.get('db/big.bin')!.size).toBe(size);
      expect(await reader.readText('db/after.txt')).toBe('after 4 GiB\n');
    } finally {
      reader.close();
    }
    const seen = python(file);
    expect(seen.bad).toBeNull();
    expect(seen.entries['db/big.bin']!.size).toBe(size);
  }, 180_000);

  describe('files read through reused buffers (addFile)', () => {
    // Both outputs queue up to 4 MiB before their writes complete, as a backup's ArchiveFile does: a
    // buffer reused before its bytes were written would put another chunk's bytes in the archive.
    // The slow one takes its copy of each chunk only as it calls back, a few milliseconds later.
    const outputs = {
      ArchiveFile: (file: string) => ({ out: new ArchiveFile(file), done: async () => undefined }),
      'a slow output': (file: string) => {
        const parts: Buffer[] = [];
        const out = new Writable({
          highWaterMark: 4 << 20,
          write(chunk: Buffer, _encoding, callback) {
            setTimeout(() => {
              parts.push(Buffer.from(chunk));
              callback();
            }, 2);
          },
        });
        return { out, done: async () => writeFileSync(file, Buffer.concat(parts)) };
      },
    };
    for (const level of [0, 6]) {
      for (const [kind, output] of Object.entries(outputs)) {
        it(`writes every file byte for byte at level ${level}, large and small, into ${kind}`, async () => {
          const dir = tempDir();
          const files: Record<string, Buffer> = {
            'db/big.bin': Buffer.concat([randomBytes(6 * 1024 * 1024), words(3 * 1024 * 1024 + 99)]),
            'db/empty': Buffer.alloc(0),
            'db/exactly-1MiB': randomBytes(1 << 20),
          };
          // Sizes either side of the half-buffer line, between which a read is copied or handed on.
          for (let i = 0; i < 40; i++) files[`files/0/f${i}`] = randomBytes([100, 70_000, (1 << 19) - 1, 1 << 19, 900_000][i % 5]! + i);
          const sources = path.join(dir, 'src');
          mkdirSync(sources);
          const file = path.join(dir, 'a.zip');
          const { out, done } = output(file);
          const zip = new ZipWriter(out, level);
          const records: Record<string, string> = {};
          for (const [name, data] of Object.entries(files)) {
            const source = path.join(sources, name.replaceAll('/', '_'));
            writeFileSync(source, data);
            records[name] = (await zip.addFile(name, source, { compressed: false })).sha256;
          }
          const archive = await zip.finish();
          await done();
          expect(archive.sha256).toBe(sha256(readFileSync(file)));

          const reader = await ZipReader.open(file);
          try {
            for (const [name, data] of Object.entries(files)) {
              const back = await readAll(reader, name);
              expect(back.length, name).toBe(data.length);
              expect(back.equals(data), name).toBe(true);
              expect(records[name], name).toBe(sha256(data));
            }
          } finally {
            reader.close();
          }
          expect(python(file).bad).toBeNull();
        });
      }
    }

    it('stops a file entry on abort, with the reason, and closes the file', async () => {
      const dir = tempDir();
      const source = path.join(dir, 'big.sqlite');
      writeFileSync(source, randomBytes(64 << 20));
      const zip = new ZipWriter(createWriteStream(path.join(dir, 'x.zip')), 0, (n) => {
        if (n > 0) zip.abort(new Error('backup of crm timed out after 5m'));
      });
      await expect(zip.addFile('db/database.sqlite', source, { compressed: false })).rejects.toThrow('timed out after 5m');
      await expect(zip.finish()).rejects.toThrow('timed out after 5m');
      const openOnSource = readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === source;
        } catch {
          return false; // the listing's own descriptor, gone by now
        }
      });
      expect(openOnSource).toEqual([]);
    });

    it('fails the entry when a read fails while the chunk before it is being written', async () => {
      const dir = tempDir();
      const source = path.join(dir, 'big.sqlite');
      writeFileSync(source, randomBytes(8 << 20));
      const probe = await open(source, 'r');
      const prototype = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<unknown> };
      await probe.close();
      const realRead = prototype.read;
      let reads = 0;
      const failing = vi.spyOn(prototype, 'read').mockImplementation(function (this: unknown, ...args: unknown[]) {
        reads += 1;
        return reads === 3 ? Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })) : realRead.apply(this, args);
      });
      try {
        // Writes call back late, so the failing read-ahead settles while nothing waits for it yet.
        const out = new Writable({ highWaterMark: 1, write: (_chunk, _encoding, callback) => setTimeout(callback, 30) });
        const zip = new ZipWriter(out, 0);
        await expect(zip.addFile('db/database.sqlite', source, { compressed: false })).rejects.toThrow('EIO');
        await expect(zip.finish()).rejects.toThrow('EIO');
      } finally {
        failing.mockRestore();
      }
    });

    it('fails the entry with the file named when the file cannot be read', async () => {
      const dir = tempDir();
      const zip = new ZipWriter(new Writable({ write: (_chunk, _encoding, callback) => callback() }), 0);
      await expect(zip.addFile('db/x', path.join(dir, 'missing.sqlite'), { compressed: false })).rejects.toThrow(/ENOENT.*missing\.sqlite/);
    });
  });

  it('fails the entry and the archive when the source fails', async () => {
    const dir = tempDir();
    const zip = new ZipWriter(createWriteStream(path.join(dir, 'x.zip')), 6);
    const source = new PassThrough();
    const adding = zip.add('db/dump.sql', source, { compressed: false });
    source.write(words(100_000));
    setImmediate(() => source.destroy(new Error('pg_dump exited with code 1')));
    await expect(adding).rejects.toThrow('pg_dump exited with code 1');
    await expect(zip.finish()).rejects.toThrow('pg_dump exited with code 1');
  });

  it('stops a running entry on abort, with the reason', async () => {
    const dir = tempDir();
    const zip = new ZipWriter(createWriteStream(path.join(dir, 'x.zip')), 0);
    const source = new PassThrough();
    const adding = zip.add('db/dump.sql', source, { compressed: false });
    source.write(Buffer.alloc(1000));
    setTimeout(() => zip.abort(new Error('backup of crm timed out after 5m')), 20);
    await expect(adding).rejects.toThrow('timed out after 5m');
    expect(source.destroyed).toBe(true);
  });
});

async function readAll(reader: ZipReader, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await reader.open(name)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
