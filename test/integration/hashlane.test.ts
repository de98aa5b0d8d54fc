/**
 * The SHA-256 lane on its worker thread. A worker cannot load TypeScript sources, so this runs the
 * built module (dist/, as the binary does; `npm ci` builds it) and compares every digest with one
 * computed here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

const built = new URL('../../dist/pipeline/hashlane.js', import.meta.url);

describe('SHA-256 lane on a worker thread', () => {
  it('matches a hash computed here, for streams on both sides of the hand-off size, one after another', async () => {
    const { WorkerLane, hashOnLane } = (await import(built.href)) as typeof import('../../src/pipeline/hashlane.js');
    const lane = new WorkerLane();
    try {
      const MiB = 1 << 20;
      for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 12345, 40 * MiB + 7]) {
        const data = randomBytes(size);
        const chunks: Buffer[] = [];
        for (let at = 0, i = 0; at < size; i++) {
          const n = [1, 4096, 333333, 2 * MiB][i % 4]!;
          chunks.push(data.subarray(at, at + n));
          at += n;
        }
        let counted = 0;
        const result = await hashOnLane((async function* () { yield* chunks; })(), lane, (n) => (counted += n));
        expect(result, `size ${size}`).toEqual({ sha256: createHash('sha256').update(data).digest('hex'), size });
        expect(counted).toBe(size);
      }
    } finally {
      lane.close();
    }
  });

  it('rejects a digest asked for after the lane closed', async () => {
    const { WorkerLane } = (await import(built.href)) as typeof import('../../src/pipeline/hashlane.js');
    const lane = new WorkerLane();
    lane.update(randomBytes(3 << 20));
    lane.close();
    await expect(lane.digest()).rejects.toThrow('closed');
  });
});
