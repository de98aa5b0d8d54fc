/**
 * Reads archives through their central directory (yauzl): entries are opened by name and streamed,
 * zip64 included. Any structural problem (truncation, a bad central directory, an unsafe name)
 * is a VerificationError.
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import yauzl from 'yauzl';
import { VerificationError, errorMessage } from '../core/errors.js';
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

export class ZipReader {
  private constructor(
    readonly file: string,
    private readonly zip: yauzl.ZipFile,
    private readonly raw: Map<string, yauzl.Entry>,
    readonly entries: Map<string, ZipEntryInfo>,
  ) {}

  static async open(file: string): Promise<ZipReader> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true });
    } catch (error) {
      throw new VerificationError(`${file}: not a readable zip archive (${errorMessage(error)})`, { cause: error });
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
      throw new VerificationError(`${file}: damaged zip archive (${message})`, { cause: error });
    }
    return new ZipReader(file, zip, raw, entries);
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
      throw new VerificationError(`${this.file}: entry ${name} cannot be read (${errorMessage(error)})`, { cause: error });
    }
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
      throw new VerificationError(`${this.file}: entry ${name} uses compression method ${entry.compressionMethod}; only stored and deflated entries are read`);
    }
    const expected = entry.uncompressedSize;
    const index = entry.compressionMethod === 8 ? blockIndexOf(entry) : undefined;
    let data: Readable;
    if (index && indexFits({ index, compressedSize: entry.compressedSize, size: expected })) {
      data = inflateIndexed({ file: this.file, name, start, compressedSize: entry.compressedSize, size: expected, index });
    } else {
      const raw: Readable =
        entry.compressedSize === 0
          ? Readable.from([])
          : createReadStream(this.file, { start, end: start + entry.compressedSize - 1, highWaterMark: 1 << 20 });
      data = entry.compressionMethod === 8 ? raw.pipe(createInflateRaw({ chunkSize: 1 << 20 })) : raw;
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
    data.once('error', (error) => counted.destroy(new VerificationError(`${this.file}: entry ${name} cannot be read (${errorMessage(error)})`, { cause: error })));
    return data.pipe(counted);
  }

  async readText(name: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.open(name)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  close(): void {
    this.zip.close();
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
