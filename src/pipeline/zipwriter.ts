/**
 * Streams entries into a zip archive, hashing each entry and the whole archive as the bytes pass.
 * Nothing is buffered beyond a few 1 MiB blocks, so memory stays flat whatever the size of a dump.
 * Entries are added one at a time: each `add` resolves once its entry is written.
 *
 * The writer is ours rather than a zip library's because of where the time goes on a large
 * dump: the libraries compute CRC-32 in JavaScript (a quarter of the wall time of a stored 500 MB
 * backup) and deflate on a single core. Here CRC-32 is zlib's native one and deflate runs on every
 * core (deflate.ts). Each entry's SHA-256 is computed here; the archive's too, unless the output
 * hashes what it writes itself (`archiveHash`: ArchiveFile's worker, for stored archives). The
 * layout is in zipformat.ts; the archives are checked with yauzl, Info-ZIP's unzip and Python's
 * zipfile.
 */
import { type Hash, createHash } from 'node:crypto';
import { once } from 'node:events';
import { type Readable, type Writable, pipeline } from 'node:stream';
import { finished } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import type { Encoder } from '../core/driver.js';
import type { EntryRecord } from '../core/manifest.js';
import { ParallelDeflate } from './deflate.js';
import {
  type CentralRecord,
  METHOD_DEFLATED,
  METHOD_STORED,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  blockIndex,
  centralHeader,
  dataDescriptor,
  endOfArchive,
  localHeader,
} from './zipformat.js';

export interface EntryOptions {
  /** Already compressed (a gzip stream, say): stored as is instead of deflated. */
  compressed: boolean;
  /**
   * Compressed on its way by the driver's own encoder at the archive's level, and stored: a gzip
   * stream for a tool that reads gzip (gzip.ts), or a dump in its tool's own compressed format.
   */
  encode?: Encoder;
  mode?: number;
  date?: Date;
}

export interface ZipWriterOptions {
  /** Write the zip64 end records even when the archive does not need them (tests). */
  forceZip64?: boolean;
  /** The archive's SHA-256, from an output that hashes what it writes, asked once it has finished. */
  archiveHash?: () => string;
}

export class ZipWriter {
  private offset = 0;
  private readonly records: CentralRecord[] = [];
  private readonly archiveHash: Hash | undefined;
  private readonly stop = new AbortController();
  private failure: Error | undefined;
  private source: Readable | undefined;

  constructor(
    private readonly out: Writable,
    private readonly level: number,
    private readonly onBytes?: (n: number) => void,
    private readonly options: ZipWriterOptions = {},
  ) {
    out.on('error', (error) => this.fail(error));
    this.archiveHash = options.archiveHash ? undefined : createHash('sha256');
  }

  /** Stream `source` into the entry `name`; resolves with its size and SHA-256 once written. */
  async add(name: string, source: Readable, options: EntryOptions): Promise<EntryRecord> {
    if (options.encode) {
      // The entry is the encoder's output: its size, CRC-32 and SHA-256 are those of the encoded bytes.
      const encoded = pipeline(source, options.encode(this.level), () => undefined);
      return this.entry(name, encoded, METHOD_STORED, S_IFREG | (options.mode ?? 0o644), options.date ?? new Date());
    }
    const method = options.compressed || this.level === 0 ? METHOD_STORED : METHOD_DEFLATED;
    return this.entry(name, source, method, S_IFREG | (options.mode ?? 0o644), options.date ?? new Date());
  }

  async addBuffer(name: string, data: Buffer, options: EntryOptions): Promise<EntryRecord> {
    const method = options.compressed || this.level === 0 || data.length === 0 ? METHOD_STORED : METHOD_DEFLATED;
    return this.entry(name, [data], method, S_IFREG | (options.mode ?? 0o644), options.date ?? new Date());
  }

  async addDirectory(name: string, mode: number, date: Date): Promise<void> {
    await this.entry(name.endsWith('/') ? name : `${name}/`, [], METHOD_STORED, S_IFDIR | mode, date);
  }

  /** A symlink entry; its data is the link's target, hashed like any entry. */
  async addSymlink(name: string, target: string, mode: number): Promise<EntryRecord> {
    return this.entry(name, [Buffer.from(target)], METHOD_STORED, S_IFLNK | mode, new Date());
  }

  /** Write the central directory and wait for the last byte to reach `out`. */
  async finish(): Promise<{ size: number; sha256: string }> {
    this.throwIfFailed();
    const centralOffset = this.offset;
    const central = Buffer.concat(this.records.map(centralHeader));
    await this.emit(central);
    await this.emit(endOfArchive(this.records.length, centralOffset, central.length, this.options.forceZip64));
    this.out.end();
    await finished(this.out);
    this.throwIfFailed();
    return { size: this.offset, sha256: this.archiveHash ? this.archiveHash.digest('hex') : this.options.archiveHash!() };
  }

  /** Stop writing; the caller removes the partial file. */
  abort(error?: Error): void {
    this.fail(error ?? new Error('archive aborted'));
  }

  private async entry(name: string, source: Readable | Buffer[], method: number, mode: number, date: Date): Promise<EntryRecord> {
    this.throwIfFailed();
    const nameBytes = Buffer.from(name, 'utf8');
    const offset = this.offset;
    const hash = createHash('sha256');
    let crc = 0;
    let size = 0;
    const deflate = method === METHOD_DEFLATED ? new ParallelDeflate(this.level, (compressed) => this.emit(compressed), { index: true }) : undefined;
    if (!Array.isArray(source)) this.source = source;
    try {
      await this.emit(localHeader(nameBytes, method, date));
      for await (const chunk of source as AsyncIterable<Buffer>) {
        this.throwIfFailed();
        crc = crc32(chunk, crc);
        size += chunk.length;
        hash.update(chunk);
        this.onBytes?.(chunk.length);
        if (deflate) await deflate.write(chunk);
        else await this.emit(chunk);
      }
      if (deflate) await deflate.end();
      this.throwIfFailed();
      const compressedSize = deflate ? deflate.written : size;
      await this.emit(dataDescriptor(crc, compressedSize, size));
      const index = deflate?.blocks ? blockIndex(deflate.blockSize, deflate.blocks) : undefined;
      this.records.push({ name: nameBytes, method, date, crc32: crc, compressedSize, size, offset, mode, index });
      return { path: name, size, sha256: hash.digest('hex') };
    } catch (error) {
      this.fail(error as Error);
      throw this.failure;
    } finally {
      this.source = undefined;
    }
  }

  private async emit(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    this.offset += chunk.length;
    this.archiveHash?.update(chunk);
    if (!this.out.write(chunk)) {
      try {
        await once(this.out, 'drain', { signal: this.stop.signal });
      } catch (error) {
        this.fail(error as Error);
        this.throwIfFailed();
      }
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.stop.abort(error);
    this.source?.destroy(error);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
