/**
 * SHA-256 of a whole file, in a worker thread: verify hashes the archive here while the main
 * thread checks its entries, so the two passes run side by side on two cores.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { hashStream } from './hash.js';

interface Message {
  bytes?: number;
  result?: { sha256: string; size: number };
  error?: string;
}

const PROGRESS_EVERY = 8 << 20;

if (!isMainThread && parentPort) {
  const port = parentPort;
  const hash = createHash('sha256');
  let size = 0;
  let unreported = 0;
  createReadStream((workerData as { file: string }).file, { highWaterMark: 1 << 20 })
    .on('data', (chunk) => {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      size += buffer.length;
      unreported += buffer.length;
      if (unreported >= PROGRESS_EVERY) {
        port.postMessage({ bytes: unreported } satisfies Message);
        unreported = 0;
      }
    })
    .on('end', () => port.postMessage({ bytes: unreported, result: { sha256: hash.digest('hex'), size } } satisfies Message))
    .on('error', (error) => port.postMessage({ error: error.message } satisfies Message));
}

export function hashFileInWorker(file: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  // Run from TypeScript sources (tests), a worker cannot load this module: hash here instead.
  if (import.meta.url.endsWith('.ts')) return hashStream(createReadStream(file, { highWaterMark: 1 << 20 }), onBytes);
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { file } });
    worker.on('message', (message: Message) => {
      if (message.bytes) onBytes?.(message.bytes);
      if (message.error) reject(new Error(message.error));
      if (message.result) resolve(message.result);
      if (message.error || message.result) void worker.terminate();
    });
    worker.on('error', reject);
  });
}
