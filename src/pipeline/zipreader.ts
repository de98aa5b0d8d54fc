/**
 * Reads archives through their central directory (yauzl): entries are opened by name and streamed,
 * zip64 included. Any structural problem (truncation, a bad central directory, an unsafe name)
 * is a VerificationError.
 */
import { Readable, Transform } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import yauzl from 'yauzl';
import { VerificationError, errorMessage, readFailure } from '../core/errors.js';
import type { ArchiveReader } from '../core/storage.js';
import { openLocalArchive } from '../storage/local.js';
import { inflateIndexed, indexFits } from './inflate.js';
import { BLOCK_INDEX_ID, type BlockIndex, S_IFDIR, S_IFLNK, S_IFMT, readBlockIndex } from './zipformat.js';

export interface ZipEntryInfo {
  name: string;
  size: number;
  compressedSize: number;
  /** Unix mode from the external attributes, when the archive recorded one. */
  mode: number | undefined;
  type: 'file' | 'directory' | 'symlink';
  modified: Date;
}

/** yauzl's view of an archive: positional reads and ranged streams, from a file or an object. */
class RangeReader extends yauzl.RandomAccessReader {
  constructor(private readonly archive: ArchiveReader) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return this.archive.stream(start, end);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    readFully(this.archive, buffer, offset, length, position).then(() => callback(null), callback);
  }
}

/** Read exactly `length` bytes at `position`, or fail: an archive that ends early is damaged. */
export async function readFully(archive: ArchiveReader, buffer: Buffer, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const n = await archive.read(buffer, offset + done, length - done, position + done);
    if (n === 0) throw new VerificationError(`${archive.name}: the archive ends at byte ${position + done}, inside data it declares`);
    done += n;
  }
}

export class ZipReader {
  private constructor(
    readonly archive: ArchiveReader,
    private readonly zip: yauzl.ZipFile,
    private readonly raw: Map<string, yauzl.Entry>,
    readonly entries: Map<string, ZipEntryInfo>,
    private readonly ownsArchive: boolean,
  ) {}

  get file(): string {
    return this.archive.name;
  }

  /** A zip file on this machine; `close` closes it. */
  static async open(file: string): Promise<ZipReader> {
    let archive: ArchiveReader;
    try {
      archive = await openLocalArchive(file);
    } catch (error) {
      throw readFailure(error, `${file}: not a readable zip archive (${errorMessage(error)})`);
    }
    try {
      return await ZipReader.read(archive, true);
    } catch (error) {
      await archive.close();
      throw error;
    }
  }

  /** A zip in any storage; the caller closes `archive` after the reader. */
  static fromArchive(archive: ArchiveReader): Promise<ZipReader> {
    return ZipReader.read(archive, false);
  }

  private static async read(archive: ArchiveReader, owns: boolean): Promise<ZipReader> {
    const file = archive.name;
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.fromRandomAccessReaderPromise(new RangeReader(archive), archive.size, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true });
    } catch (error) {
      throw readFailure(error, `${file}: not a readable zip archive (${errorMessage(error)})`);
    }
    const raw = new Map<string, yauzl.Entry>();
    const entries = new Map<string, ZipEntryInfo>();
    try {
      await new Promise<void>((resolve, reject) => {
        zip.on('entry', (entry: yauzl.Entry) => {
          if (raw.has(entry.fileName)) {
            reject(new Error(`duplicate entry ${entry.fileName}`));
            return;
          }
          raw.set(entry.fileName, entry);
          entries.set(entry.fileName, describe(entry));
          zip.readEntry();
        });
        zip.once('end', resolve);
        zip.once('error', reject);
        zip.readEntry();
      });
    } catch (error) {
      zip.close();
      const message = errorMessage(error);
      if (/invalid relative path|absolute path|invalid characters/.test(message)) {
        throw new VerificationError(`${file}: unsafe entry name, it would land outside its folder (${message})`, { cause: error });
      }
      throw readFailure(error, `${file}: damaged zip archive (${message})`);
    }
    return new ZipReader(archive, zip, raw, entries, owns);
  }

  /**
   * The entry's data, decompressed. Its byte range is read straight from the file in 1 MiB chunks
   * (yauzl's own entry streams read 16 KiB at a time, which costs more than the hashing on a large
   * stored dump), and inflated when deflated, on every core when the entry has a block index
   * (inflate.ts); the size is checked at the end.
   */
  async open(name: string): Promise<Readable> {
    const entry = this.raw.get(name);
    if (!entry) throw new VerificationError(`${this.file}: entry ${name} is missing`);
    let start: number;
    try {
      ({ fileDataStart: start } = await this.zip.readLocalFileHeaderPromise(entry, { minimal: true }));
    } catch (error) {
      throw readFailure(error, `${this.file}: entry ${name} cannot be read (${errorMessage(error)})`);
    }
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
      throw new VerificationError(`${this.file}: entry ${name} uses compression method ${entry.compressionMethod}; only stored and deflated entries are read`);
    }
    const expected = entry.uncompressedSize;
    const index = entry.compressionMethod === 8 ? blockIndexOf(entry) : undefined;
    let data: Readable;
    if (index && indexFits({ index, compressedSize: entry.compressedSize, size: expected })) {
      data = inflateIndexed({ archive: this.archive, name, start, compressedSize: entry.compressedSize, size: expected, index });
    } else {
      const raw: Readable = entry.compressedSize === 0 ? Readable.from([]) : this.archive.stream(start, start + entry.compressedSize);
      // Inflate's output buffer is allocated whole per entry: 1 MiB for each of thousands of small
      // files cost more in garbage collection than their bytes did.
      data = entry.compressionMethod === 8 ? raw.pipe(createInflateRaw({ chunkSize: Math.min(1 << 20, Math.max(16 << 10, expected)) })) : raw;
      if (data !== raw) raw.once('error', (error) => data.destroy(error));
    }
    let seen = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        callback(seen > expected ? new VerificationError(`${name}: more data than the ${expected} bytes recorded`) : null, chunk);
      },
      flush(callback) {
        callback(seen === expected ? null : new VerificationError(`${name}: ${seen} bytes, expected ${expected}`));
      },
    });
    data.once('error', (error) => counted.destroy(readFailure(error, `${this.file}: entry ${name} cannot be read (${errorMessage(error)})`)));
    return data.pipe(counted);
  }

  async readText(name: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.open(name)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  close(): void {
    this.zip.close();
    if (this.ownsArchive) void this.archive.close().catch(() => undefined);
  }
}

function blockIndexOf(entry: yauzl.Entry): BlockIndex | undefined {
  const field = entry.extraFields.find((f) => f.id === BLOCK_INDEX_ID);
  return field ? readBlockIndex(field.data) : undefined;
}

function describe(entry: yauzl.Entry): ZipEntryInfo {
  const madeByUnix = entry.versionMadeBy >> 8 === 3;
  const mode = madeByUnix ? (entry.externalFileAttributes >>> 16) & 0xffff : undefined;
  let type: ZipEntryInfo['type'] = entry.fileName.endsWith('/') ? 'directory' : 'file';
  if (mode !== undefined && (mode & S_IFMT) === S_IFLNK) type = 'symlink';
  else if (mode !== undefined && (mode & S_IFMT) === S_IFDIR) type = 'directory';
  return {
    name: entry.fileName,
    size: entry.uncompressedSize,
    compressedSize: entry.compressedSize,
    mode: mode === undefined || mode === 0 ? undefined : mode & 0o7777,
    type,
    modified: entry.getLastModDate(),
  };
}
