/**
 * SHA-256 computed beside the main thread. A backup hashes every byte twice (each entry, and the
 * archive that holds it), and on a large stored entry those two hashes cost more than all the rest
 * of the work; a lane moves one of them to a worker thread, so it runs on another core.
 *
 * Bytes are copied into a 1 MiB staging buffer, and each full buffer is handed to the worker
 * (transferred, not copied again). Small streams never leave the main thread: when `digest` comes
 * before the first buffer filled up, the staged bytes are hashed here, with no round trip, so an
 * archive of ten thousand small files costs no more than before. `room` is the back-pressure:
 * the writer waits there while the worker is more than a few buffers behind.
 */
import { createHash } from 'node:crypto';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

const STAGE = 1 << 20;
const MAX_BEHIND = 8 << 20;

type ToWorker = { update: Uint8Array } | { digest: true };
/** `hashed` comes back to be filled again: a few buffers circulate instead of one new one per MiB. */
type FromWorker = { hashed: Uint8Array } | { sha256: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  let hash = createHash('sha256');
  port.on('message', (message: ToWorker) => {
    if ('update' in message) {
      hash.update(message.update);
      port.postMessage({ hashed: message.update } satisfies FromWorker, [message.update.buffer as ArrayBuffer]);
    } else {
      port.postMessage({ sha256: hash.digest('hex') } satisfies FromWorker);
      hash = createHash('sha256');
    }
  });
}

export interface Sha256Lane {
  update(chunk: Uint8Array): void;
  /** Resolves once the lane has caught up enough to take more. */
  room(): Promise<void>;
  /** The hash of everything since the last digest; the lane then starts afresh. */
  digest(): Promise<string>;
  close(): void;
}

/** A lane on a worker thread; on this thread when running from TypeScript sources (tests), where a worker cannot load this module. */
export function openSha256Lane(): Sha256Lane {
  return import.meta.url.endsWith('.ts') ? new InlineLane() : new WorkerLane();
}

export class InlineLane implements Sha256Lane {
  private hash = createHash('sha256');

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }

  async room(): Promise<void> {}

  async digest(): Promise<string> {
    const sha256 = this.hash.digest('hex');
    this.hash = createHash('sha256');
    return sha256;
  }

  close(): void {}
}

export class WorkerLane implements Sha256Lane {
  private worker: Worker | undefined;
  private stage: Buffer = Buffer.allocUnsafeSlow(STAGE);
  private readonly spare: Buffer[] = [];
  private staged = 0;
  /** Whether any of the current stream went to the worker; if not, `digest` hashes here. */
  private handedOff = false;
  private behind = 0;
  private failure: Error | undefined;
  private waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private digests: { resolve: (sha256: string) => void; reject: (error: Error) => void }[] = [];

  update(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, STAGE - this.staged);
      this.stage.set(chunk.subarray(at, at + n), this.staged);
      this.staged += n;
      at += n;
      if (this.staged === STAGE) this.handOff();
    }
  }

  room(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.behind <= MAX_BEHIND) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.handedOff) {
      const sha256 = createHash('sha256').update(this.stage.subarray(0, this.staged)).digest('hex');
      this.staged = 0;
      return Promise.resolve(sha256);
    }
    if (this.staged > 0) this.handOff();
    this.handedOff = false;
    this.post({ digest: true });
    return new Promise((resolve, reject) => this.digests.push({ resolve, reject }));
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
    this.fail(new Error('hash lane closed'));
  }

  private handOff(): void {
    const data = this.stage.subarray(0, this.staged);
    this.behind += data.length;
    this.handedOff = true;
    this.post({ update: data }, [data.buffer as ArrayBuffer]);
    this.stage = this.spare.pop() ?? Buffer.allocUnsafeSlow(STAGE);
    this.staged = 0;
  }

  private post(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.failure) return;
    this.start().postMessage(message, transfer);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL(import.meta.url));
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      if ('hashed' in message) {
        this.behind -= message.hashed.length;
        const buffer = Buffer.from(message.hashed.buffer);
        if (buffer.length === STAGE) this.spare.push(buffer);
        if (this.waiting && this.behind <= MAX_BEHIND) {
          this.waiting.resolve();
          this.waiting = undefined;
        }
      } else {
        this.digests.shift()?.resolve(message.sha256);
      }
    });
    worker.on('error', (error) => this.fail(error));
    this.worker = worker;
    return worker;
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.waiting?.reject(error);
    this.waiting = undefined;
    for (const pending of this.digests) pending.reject(error);
    this.digests = [];
  }
}

/** SHA-256 and size of everything a stream yields, hashed on `lane`. */
export async function hashOnLane(stream: AsyncIterable<Buffer>, lane: Sha256Lane, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  let size = 0;
  for await (const chunk of stream) {
    lane.update(chunk);
    size += chunk.length;
    onBytes?.(chunk.length);
    await lane.room();
  }
  return { sha256: await lane.digest(), size };
}
