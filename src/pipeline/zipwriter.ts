/**
 * Streams entries into a zip archive (archiver), hashing each entry and the whole archive as the
 * bytes pass. Nothing is buffered beyond the streams' own high-water marks, so memory stays flat
 * whatever the size of a dump. Entries are added one at a time: each `add` resolves once its
 * entry is written, before the next begins.
 */
import { once } from 'node:events';
import { type Readable, type Writable, PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZipArchive } from 'archiver';
import type { EntryRecord } from '../core/manifest.js';
import { HashCounter } from './hash.js';

export interface EntryOptions {
  /** Already compressed (pg_dump -Fc, gzip): stored as is instead of deflated. */
  compressed: boolean;
  mode?: number;
  date?: Date;
}

export class ZipWriter {
  private readonly zip: ZipArchive;
  private readonly archiveHash = new HashCounter();
  private readonly done: Promise<void>;
  private failure: Error | undefined;
  private readonly pending = new Set<(error: Error) => void>();

  constructor(
    out: Writable,
    private readonly level: number,
    private readonly onBytes?: (n: number) => void,
  ) {
    this.zip = new ZipArchive({ zlib: { level }, highWaterMark: 1 << 20 });
    this.zip.on('warning', (error) => this.fail(error));
    this.zip.on('error', (error) => this.fail(error));
    this.done = pipeline(this.zip, this.archiveHash, out);
    this.done.catch((error: Error) => this.fail(error));
  }

  /** Stream `source` into the entry `name`; resolves with its size and SHA-256 once written. */
  async add(name: string, source: Readable, options: EntryOptions): Promise<EntryRecord> {
    this.throwIfFailed();
    const counter = new HashCounter(this.onBytes);
    const written = this.entryWritten(name);
    source.once('error', (error) => counter.destroy(error));
    counter.once('error', (error) => this.fail(error));
    this.zip.append(source.pipe(counter), {
      name,
      store: options.compressed || this.level === 0,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(options.date === undefined ? {} : { date: options.date }),
    });
    await written;
    return { path: name, size: counter.bytes, sha256: counter.digest() };
  }

  async addBuffer(name: string, data: Buffer, options: EntryOptions): Promise<EntryRecord> {
    const source = new PassThrough();
    source.end(data);
    return this.add(name, source, options);
  }

  async addDirectory(name: string, mode: number, date: Date): Promise<void> {
    this.throwIfFailed();
    const written = this.entryWritten(name);
    this.zip.append(Buffer.alloc(0), { name: name.endsWith('/') ? name : `${name}/`, type: 'directory', mode, date });
    await written;
  }

  /** A symlink entry; its data is the link's target, hashed like any entry. */
  async addSymlink(name: string, target: string, mode: number): Promise<EntryRecord> {
    this.throwIfFailed();
    const written = this.entryWritten(name);
    this.zip.symlink(name, target, mode);
    await written;
    const counter = new HashCounter();
    counter.end(Buffer.from(target));
    counter.resume();
    await once(counter, 'end');
    return { path: name, size: counter.bytes, sha256: counter.digest() };
  }

  /** Write the central directory and wait for the last byte to reach `out`. */
  async finish(): Promise<{ size: number; sha256: string }> {
    this.throwIfFailed();
    await this.zip.finalize();
    await this.done;
    this.throwIfFailed();
    return { size: this.archiveHash.bytes, sha256: this.archiveHash.digest() };
  }

  /** Stop writing; the caller removes the partial file. */
  abort(error?: Error): void {
    this.fail(error ?? new Error('archive aborted'));
  }

  private entryWritten(name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onEntry = (entry: { name: string }) => {
        if (entry.name.replace(/\/$/, '') !== name.replace(/\/$/, '')) return;
        this.zip.off('entry', onEntry);
        this.pending.delete(onFailure);
        resolve();
      };
      const onFailure = (error: Error) => {
        this.zip.off('entry', onEntry);
        reject(error);
      };
      this.zip.on('entry', onEntry);
      this.pending.add(onFailure);
    });
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const reject of this.pending) reject(error);
    this.pending.clear();
    this.zip.abort();
    this.archiveHash.destroy(error);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
