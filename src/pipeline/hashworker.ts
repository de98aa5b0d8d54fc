/**
 * SHA-256 of a file, in a worker thread, so the hashing runs on a second core:
 *   - verify hashes the whole archive there while the main thread checks its entries;
 *   - a stored (level 0) backup has its archive hashed there as it is written, the worker reading
 *     back each range once the main thread reports it written (`advance`), so the recorded hash
 *     is that of the file itself.
 * The worker reads with positional reads into one reused buffer.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { hashStream } from './hash.js';

interface ToWorker {
  /** The file holds at least this many bytes: hash up to here. */
  available: number;
  /** The file's final size: reply with the digest once it is hashed. */
  end?: number;
}

interface FromWorker {
  bytes?: number;
  result?: { sha256: string; size: number };
  error?: string;
}

const PROGRESS_EVERY = 8 << 20;
const READ_BYTES = 1 << 20;

if (!isMainThread && parentPort) {
  const port = parentPort;
  const post = (message: FromWorker) => port.postMessage(message);
  const file = (workerData as { file: string }).file;
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  let hashed = 0;
  let unreported = 0;
  // Opened at once: the file the worker reads is the one the caller has just created.
  let fd: number | undefined;
  let failure: string | undefined;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    failure = (error as Error).message;
    post({ error: failure });
  }
  const close = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  port.on('message', ({ available, end }: ToWorker) => {
    if (fd === undefined) return post({ error: failure ?? `${file} is closed` });
    try {
      while (hashed < available) {
        const n = readSync(fd, buffer, 0, Math.min(READ_BYTES, available - hashed), hashed);
        if (n === 0) throw new Error(`${file} ends after ${hashed} bytes, expected ${available}`);
        hash.update(buffer.subarray(0, n));
        hashed += n;
        unreported += n;
        if (unreported >= PROGRESS_EVERY) {
          post({ bytes: unreported });
          unreported = 0;
        }
      }
      if (end !== undefined) {
        close();
        post({ bytes: unreported, result: { sha256: hash.digest('hex'), size: hashed } });
      }
    } catch (error) {
      close();
      post({ error: (error as Error).message });
    }
  });
}

/** Hashes `file` in a worker, as far as the caller says it is written. */
export class FileHasher {
  private readonly worker: Worker | undefined;
  /** Settles when the worker has hashed the file, or has failed (rejected). */
  readonly done: Promise<{ sha256: string; size: number }>;

  constructor(
    private readonly file: string,
    private readonly onBytes?: (n: number) => void,
  ) {
    // Run from TypeScript sources (tests), a worker cannot load this module: `finish` reads the file here instead.
    if (import.meta.url.endsWith('.ts')) {
      this.done = new Promise(() => undefined);
      return;
    }
    const worker = new Worker(new URL(import.meta.url), { workerData: { file } });
    this.worker = worker;
    this.done = new Promise((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        if (message.bytes) this.onBytes?.(message.bytes);
        if (message.error) reject(new Error(message.error));
        if (message.result) resolve(message.result);
        if (message.error || message.result) void worker.terminate();
      });
      worker.on('error', reject);
      worker.on('exit', () => reject(new Error(`hashing ${file} stopped`)));
    });
    this.done.catch(() => undefined); // seen by whoever awaits `finish` or `done`
  }

  /** The first `bytes` of the file are written: hash them. */
  advance(bytes: number): void {
    this.worker?.postMessage({ available: bytes } satisfies ToWorker);
  }

  /** The file is `size` bytes long and complete: its SHA-256. */
  finish(size: number): Promise<{ sha256: string; size: number }> {
    if (!this.worker) return this.hashHere(size);
    this.worker.postMessage({ available: size, end: size } satisfies ToWorker);
    return this.done;
  }

  /** The same, on this thread (run from TypeScript sources). */
  private async hashHere(size: number): Promise<{ sha256: string; size: number }> {
    const source = size === 0 ? Readable.from([]) : createReadStream(this.file, { start: 0, end: size - 1, highWaterMark: READ_BYTES });
    const result = await hashStream(source, this.onBytes);
    if (result.size !== size) throw new Error(`${this.file} ends after ${result.size} bytes, expected ${size}`);
    return result;
  }

  /** Stop hashing (the write failed); Node closes the file the worker had open as it exits. */
  stop(): void {
    void this.worker?.terminate();
  }
}

/** SHA-256 of `file`, complete at `size` bytes, hashed in a worker. */
export function hashFileInWorker(file: string, size: number, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  return new FileHasher(file, onBytes).finish(size);
}
