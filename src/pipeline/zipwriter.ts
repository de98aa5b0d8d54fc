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
import { type FileHandle, open } from 'node:fs/promises';
import { Readable, type Writable, pipeline } from 'node:stream';
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

/** Read size for `addFile`, and the size of the buffers it reuses. */
const READ_CHUNK = 1 << 20;

export class ZipWriter {
  private offset = 0;
  /** `addFile`'s read buffers, back from their last use. */
  private readonly free: ArrayBuffer[] = [];
  private readonly pooled = new WeakSet<ArrayBuffer>();
  /** Deflate's input blocks, shared by the entries one after another. */
  private readonly deflateBlocks: Buffer[] = [];
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

  /**
   * Stream the file `file` into the entry `name`. The writer reads it itself, one read ahead, into a
   * few 1 MiB buffers that it reuses once their bytes are written (stored) or copied (deflated). A
   * file stream allocates a fresh buffer per read, and the garbage collections and page faults that
   * follow cost more than the CRC-32: on a 509 MiB stored SQLite file, reading this way took a fifth
   * off the CPU time and 30 MB off the peak memory. `out` must be done with a chunk when its write
   * callback runs, as a file stream is.
   */
  async addFile(name: string, file: string, options: EntryOptions): Promise<EntryRecord> {
    const method = options.compressed || this.level === 0 ? METHOD_STORED : METHOD_DEFLATED;
    const handle = await open(file, 'r');
    try {
      return await this.entry(name, this.chunks(handle), method, S_IFREG | (options.mode ?? 0o644), options.date ?? new Date(), (chunk) => {
        if (this.pooled.has(chunk.buffer as ArrayBuffer)) this.free.push(chunk.buffer as ArrayBuffer);
      });
    } finally {
      await handle.close();
    }
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

  /**
   * The file's bytes, read into pooled buffers, one read ahead of the chunk being written. A short
   * read (a small file, or the end of one) is handed on as a copy and its buffer reused at once, so
   * that many small entries waiting to be written never hold a 1 MiB buffer each.
   */
  private async *chunks(handle: FileHandle): AsyncGenerator<Buffer> {
    let position = 0;
    const read = () => {
      const reading = (async () => {
        const view = this.pooledBuffer();
        const { bytesRead } = await handle.read(view, 0, view.length, position);
        position += bytesRead;
        return view.subarray(0, bytesRead);
      })();
      // Nothing awaits a read ahead while its chunk is written: its failure surfaces when the loop
      // comes to it, not as an unhandled rejection before then.
      reading.catch(() => undefined);
      return reading;
    };
    let next = read();
    try {
      for (;;) {
        const chunk = await next;
        if (chunk.length === 0) {
          this.free.push(chunk.buffer as ArrayBuffer);
          return;
        }
        next = read();
        if (chunk.length >= READ_CHUNK / 2) {
          yield chunk;
        } else {
          this.free.push(chunk.buffer as ArrayBuffer);
          yield Buffer.from(chunk);
        }
      }
    } finally {
      // Stopped early: the read ahead must end before the file is closed.
      await next.catch(() => undefined);
    }
  }

  private pooledBuffer(): Buffer {
    let buffer = this.free.pop();
    if (!buffer) {
      buffer = Buffer.allocUnsafeSlow(READ_CHUNK).buffer as ArrayBuffer;
      this.pooled.add(buffer);
    }
    return Buffer.from(buffer, 0, READ_CHUNK);
  }

  /**
   * One entry from `source`. With `release`, each chunk is handed back once the writer is done with
   * it: when it is written (stored), or when deflate has copied it.
   */
  private async entry(name: string, source: Readable | Buffer[] | AsyncIterable<Buffer>, method: number, mode: number, date: Date, release?: (chunk: Buffer) => void): Promise<EntryRecord> {
    this.throwIfFailed();
    const nameBytes = Buffer.from(name, 'utf8');
    const offset = this.offset;
    const hash = createHash('sha256');
    let crc = 0;
    let size = 0;
    const deflate = method === METHOD_DEFLATED ? new ParallelDeflate(this.level, (compressed) => this.emit(compressed), { index: true, free: this.deflateBlocks }) : undefined;
    if (source instanceof Readable) this.source = source;
    try {
      await this.emit(localHeader(nameBytes, method, date));
      for await (const chunk of source as AsyncIterable<Buffer>) {
        this.throwIfFailed();
        crc = crc32(chunk, crc);
        size += chunk.length;
        hash.update(chunk);
        this.onBytes?.(chunk.length);
        if (deflate) {
          await deflate.write(chunk);
          release?.(chunk);
        } else {
          await this.emit(chunk, release && (() => release(chunk)));
        }
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

  /** Write `chunk` to `out`; `written` runs once `out` has written it. */
  private async emit(chunk: Buffer, written?: () => void): Promise<void> {
    this.throwIfFailed();
    this.offset += chunk.length;
    this.archiveHash?.update(chunk);
    if (!this.out.write(chunk, written && ((error) => !error && written()))) {
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
