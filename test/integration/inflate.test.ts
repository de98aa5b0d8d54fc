/**
 * Deflated entries are written in independent 1 MiB blocks with a block index in their central
 * header, and read back by inflating the blocks side by side. Checked against the bytes written,
 * against zlib inflating each block alone, and against unzip and Python, which skip the index.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { constants, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ZipReader } from '../../src/pipeline/zipreader.js';
import { ZipWriter } from '../../src/pipeline/zipwriter.js';
import { tempDir } from '../support/cli.js';

const MiB = 1 << 20;
const NAME = 'db/data.bin';

/** Half text that deflates well, half random bytes that do not, so blocks differ in length. */
function mixed(size: number): Buffer {
  const text = Buffer.from('row 42, customer "Ada", status shipped; '.repeat(Math.ceil(size / 80)));
  const data = Buffer.concat([text.subarray(0, size >> 1), randomBytes(size - (size >> 1))]);
  return Buffer.concat([data.subarray(size >> 2), data.subarray(0, size >> 2)]);
}

async function archive(data: Buffer): Promise<string> {
  const file = path.join(tempDir(), 'a.zip');
  const zip = new ZipWriter(createWriteStream(file), 6);
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [100_000, 777_777, 3 * MiB][i % 3]!;
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  await zip.add(NAME, Readable.from(pieces), { compressed: false });
  await zip.addBuffer('manifest.json', Buffer.from('{}\n'), { compressed: false });
  await zip.finish();
  return file;
}

/** Where the index's fields sit in the file: the central header's extra fields follow the name. */
function locateIndex(file: string): { bytes: Buffer; at: number; segment: number; lengths: number[]; dataStart: number } {
  const bytes = readFileSync(file);
  const name = Buffer.from(NAME);
  const central = bytes.lastIndexOf(name);
  let at = central + name.length;
  for (;;) {
    const id = bytes.readUInt16LE(at);
    const size = bytes.readUInt16LE(at + 2);
    if (id === 0x6b62) break;
    at += 4 + size;
  }
  const size = bytes.readUInt16LE(at + 2);
  expect(bytes.readUInt8(at + 4)).toBe(1);
  const segment = bytes.readUInt32LE(at + 5);
  const lengths: number[] = [];
  for (let p = at + 9; p < at + 4 + size; p += 4) lengths.push(bytes.readUInt32LE(p));
  const local = bytes.indexOf(name);
  const dataStart = local + name.length + bytes.readUInt16LE(local - 2);
  return { bytes, at, segment, lengths, dataStart };
}

/** The ids of the extra fields of the entry's central directory record. */
function extraIds(file: string): number[] {
  const bytes = readFileSync(file);
  const name = Buffer.from(NAME);
  const header = bytes.lastIndexOf(name) - 46; // the central record's fixed part comes before its name
  expect(bytes.readUInt32LE(header)).toBe(0x02014b50);
  const extraLength = bytes.readUInt16LE(header + 30);
  const ids: number[] = [];
  for (let at = header + 46 + name.length; at < header + 46 + name.length + extraLength; at += 4 + bytes.readUInt16LE(at + 2)) ids.push(bytes.readUInt16LE(at));
  return ids;
}

async function readEntry(file: string): Promise<Buffer> {
  const reader = await ZipReader.open(file);
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await reader.open(NAME)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    reader.close();
  }
}

describe('deflate block index', () => {
  const data = mixed(6 * MiB + 12_345);

  it('records one length per 1 MiB block, and every block inflates alone to its share', async () => {
    const file = await archive(data);
    const { bytes, segment, lengths, dataStart } = locateIndex(file);
    expect(segment).toBe(MiB);
    expect(lengths).toHaveLength(7);
    let at = dataStart;
    lengths.forEach((length, i) => {
      const last = i === lengths.length - 1;
      const alone = inflateRawSync(bytes.subarray(at, at + length), { finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH });
      expect(alone.equals(data.subarray(i * MiB, (i + 1) * MiB))).toBe(true);
      at += length;
    });
    expect((await readEntry(file)).equals(data)).toBe(true);
    // unzip and Python skip a field they do not know.
    execFileSync('unzip', ['-tq', file]);
    const script = 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.testzip()); sys.stdout.flush(); sys.stdout.buffer.write(z.read(sys.argv[2]))';
    const out = execFileSync('/usr/bin/python3', ['-c', script, file, NAME], { maxBuffer: 64 * MiB });
    expect(out.subarray(0, 5).toString()).toBe('None\n');
    expect(out.subarray(5).equals(data)).toBe(true);
  });

  it('reads an entry of whole blocks, whose last block is empty, and a single-block entry without an index', async () => {
    const whole = mixed(2 * MiB);
    const file = await archive(whole);
    expect(locateIndex(file).lengths).toHaveLength(3);
    expect(extraIds(file)).toContain(0x6b62);
    expect((await readEntry(file)).equals(whole)).toBe(true);

    const small = mixed(MiB - 1);
    const one = await archive(small);
    expect(extraIds(one)).not.toContain(0x6b62);
    expect((await readEntry(one)).equals(small)).toBe(true);
  });

  it('reads through the index: boundaries moved by one byte fail the entry, as unzip still reads it', async () => {
    const file = await archive(data);
    const { bytes, at, lengths } = locateIndex(file);
    bytes.writeUInt32LE(lengths[1]! + 1, at + 9 + 4);
    bytes.writeUInt32LE(lengths[2]! - 1, at + 9 + 8);
    writeFileSync(file, bytes);
    await expect(readEntry(file)).rejects.toThrow(/data\.bin cannot be read/);
    execFileSync('unzip', ['-tq', file]);
  });

  it('ignores an index that does not add up, and inflates the entry as one stream', async () => {
    const file = await archive(data);
    const { bytes, at, lengths } = locateIndex(file);
    bytes.writeUInt32LE(lengths[0]! + 1, at + 9);
    writeFileSync(file, bytes);
    expect((await readEntry(file)).equals(data)).toBe(true);
  });

  it('fails on a damaged block of compressed text with the entry named', async () => {
    const file = await archive(data);
    const { bytes, lengths, dataStart } = locateIndex(file);
    // The best-compressed block is text, in Huffman codes that damage cannot pass through unseen.
    const text = lengths.indexOf(Math.min(...lengths.slice(0, -1)));
    const inside = dataStart + lengths.slice(0, text).reduce((a, b) => a + b, 0) + (lengths[text]! >> 1);
    for (let i = 0; i < 64; i++) bytes[inside + i] = bytes[inside + i]! ^ 0x5a;
    writeFileSync(file, bytes);
    await expect(readEntry(file)).rejects.toThrow(/data\.bin/);
  });
});
