/**
 * Reads archives through their central directory (yauzl): entries are opened by name and streamed,
 * zip64 included. Any structural problem (truncation, a bad central directory, an unsafe name)
 * is a VerificationError.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { VerificationError, errorMessage } from '../core/errors.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

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

  async open(name: string): Promise<Readable> {
    const entry = this.raw.get(name);
    if (!entry) throw new VerificationError(`${this.file}: entry ${name} is missing`);
    try {
      return await this.zip.openReadStreamPromise(entry);
    } catch (error) {
      throw new VerificationError(`${this.file}: entry ${name} cannot be read (${errorMessage(error)})`, { cause: error });
    }
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
