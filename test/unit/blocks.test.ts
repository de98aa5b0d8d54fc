import { Readable, pipeline } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BLOCK_BYTES, BlockBatcher, lineBlocks } from '../../src/drivers/blocks.js';
import { quietLog } from '../support/app.js';
import { dumpCommand } from '../../src/drivers/stream.js';
import type { DriverContext, EntrySink, ProcessRunner } from '../../src/core/driver.js';

/** Deterministic bytes, so that a reordering or a lost byte shows. */
function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function chunked(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

/** The chunks as pushed ('data' events: an async iterator would merge what is buffered). */
function collect(stream: Readable): Promise<Buffer[]> {
  const out: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => out.push(chunk));
    stream.once('end', () => resolve(out));
    stream.once('error', reject);
  });
}

describe('BlockBatcher', () => {
  const BLOCK = 1024;

  it.each([1, 7, 600, 1024, 1500, 5000])('gathers %i-byte chunks into blocks of at least the block size, bytes unchanged', async (size) => {
    const data = bytes(10_000 + 13);
    const blocks = await collect(Readable.from(chunked(data, size)).pipe(new BlockBatcher(BLOCK)));
    expect(Buffer.concat(blocks).equals(data)).toBe(true);
    for (const block of blocks.slice(0, -1)) expect(block.length).toBeGreaterThanOrEqual(BLOCK);
    // Nothing is held back beyond one partial block: a block is at most a block plus one chunk.
    for (const block of blocks) expect(block.length).toBeLessThan(BLOCK + Math.max(size, 1));
    expect(blocks.length).toBeGreaterThan(1);
  });

  it('hands on the last, partial block only when the input ends', async () => {
    const batcher = new BlockBatcher(BLOCK);
    const seen: Buffer[] = [];
    batcher.on('data', (chunk: Buffer) => seen.push(chunk));
    batcher.write(bytes(100));
    batcher.write(bytes(200, 2));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([]);
    batcher.end();
    await new Promise((resolve) => batcher.once('end', resolve));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.equals(Buffer.concat([bytes(100), bytes(200, 2)]))).toBe(true);
  });

  it('passes a large chunk on as it is when nothing is gathered, and ends an empty input with no block', async () => {
    const big = bytes(BLOCK * 3);
    const blocks = await collect(Readable.from([big]).pipe(new BlockBatcher(BLOCK)));
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toBe(big);
    expect(await collect(Readable.from([]).pipe(new BlockBatcher(BLOCK)))).toEqual([]);
  });

  it('passes an error of its source on to what reads it', async () => {
    const source = new Readable({ read() {} });
    source.push(bytes(10));
    const batched = pipeline(source, new BlockBatcher(BLOCK), () => undefined);
    const reading = collect(batched);
    source.destroy(new Error('tool died'));
    await expect(reading).rejects.toThrow('tool died');
  });
});

describe('lineBlocks', () => {
  /** The lines in groups of one, two and three, as a cursor hands on batches. */
  async function* from(lines: (string | Uint8Array)[]): AsyncGenerator<(string | Uint8Array)[]> {
    for (let i = 0, n = 1; i < lines.length; i += n, n = (n % 3) + 1) yield lines.slice(i, i + n);
  }

  const lines = ['{"a":1}', 'é'.repeat(9), '😀 x', '', 'plain ascii line', '\u{10FFFF}€', 'z'.repeat(30), 'end'];

  it.each([8, 16, 17, 40, 4096])('encodes lines and newlines into blocks of at most %i bytes, on line boundaries', async (size) => {
    const blocks: Buffer[] = [];
    for await (const block of lineBlocks(from(lines), size)) blocks.push(block);
    expect(Buffer.concat(blocks).toString('utf8')).toBe(`${lines.join('\n')}\n`);
    for (const block of blocks) {
      expect(block[block.length - 1]).toBe(0x0a);
      // Only a line longer than a block makes a longer block, and then it is alone in it.
      if (block.length > size) expect(block.subarray(0, -1).includes(0x0a)).toBe(false);
    }
  });

  it('does not touch a block once it is yielded', async () => {
    const many = Array.from({ length: 500 }, (_, i) => `line ${i} ${'x'.repeat(i % 37)}`);
    const blocks: Buffer[] = [];
    for await (const block of lineBlocks(from(many), 256)) blocks.push(block);
    expect(blocks.length).toBeGreaterThan(10);
    expect(Buffer.concat(blocks).toString('utf8')).toBe(`${many.join('\n')}\n`);
  });

  it('copies a line given as bytes before the next is asked for, so the producer may reuse its buffer', async () => {
    const texts = ['{"a":1}', 'é😀', '', 'y'.repeat(50), 'tail'];
    const scratch = Buffer.alloc(64);
    async function* reused(): AsyncGenerator<Iterable<string | Uint8Array>> {
      yield (function* () {
        for (const text of texts) {
          scratch.fill(0x21);
          const n = scratch.write(text);
          yield scratch.subarray(0, n);
        }
      })();
      yield ['text after bytes'];
    }
    const blocks: Buffer[] = [];
    for await (const block of lineBlocks(reused(), 16)) blocks.push(block);
    expect(Buffer.concat(blocks).toString('utf8')).toBe(`${[...texts, 'text after bytes'].join('\n')}\n`);
  });

  it('yields nothing for no lines, and passes on an error of its source', async () => {
    const none: Buffer[] = [];
    for await (const block of lineBlocks(from([]))) none.push(block);
    expect(none).toEqual([]);
    async function* failing(): AsyncGenerator<string[]> {
      yield ['one'];
      throw new Error('cursor failed');
    }
    await expect(collect(Readable.from(lineBlocks(failing())))).rejects.toThrow('cursor failed');
  });
});

describe('dumpCommand', () => {
  /** A runner whose "tool" writes `data` in `size`-byte pieces, then fails if `failWith` is set. */
  function fakeRunner(data: Buffer, size: number, failWith?: Error): ProcessRunner {
    return {
      async start() {
        const stdout = Readable.from(chunked(data, size), { objectMode: false });
        let killed: unknown;
        const done = new Promise<void>((resolve, reject) => {
          stdout.on('end', () => (failWith ? reject(failWith) : resolve()));
          stdout.on('close', () => (killed ? reject(killed) : undefined));
        });
        done.catch(() => undefined);
        return { stdout, done, kill: (reason) => { killed = reason; stdout.destroy(); } };
      },
      run: () => Promise.reject(new Error('not used')),
    };
  }

  function context(runner: ProcessRunner): DriverContext {
    return { target: 't', signal: new AbortController().signal, log: quietLog, runner, env: {}, bin: undefined, tempPath: (n) => n };
  }

  function collectingSink(seen: Buffer[]): EntrySink {
    return {
      addFile: () => Promise.reject(new Error('stream drivers add no files')),
      async add(path, stream) {
        let size = 0;
        for await (const chunk of stream) {
          seen.push(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        return { path, size, sha256: '' };
      },
    };
  }

  it('hands the sink and the tap blocks of at least 256 KiB, whatever the tool writes', async () => {
    const data = bytes(BLOCK_BYTES * 3 + 1234);
    const seen: Buffer[] = [];
    const tapped: number[] = [];
    const { Transform } = await import('node:stream');
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        tapped.push(chunk.length);
        callback(null, chunk);
      },
    });
    const record = await dumpCommand(context(fakeRunner(data, 600)), { command: 'tool', args: [] }, collectingSink(seen), 'db/x', { compressed: true, tap });
    expect(record.size).toBe(data.length);
    expect(Buffer.concat(seen).equals(data)).toBe(true);
    expect(tapped.length).toBe(4);
    for (const length of tapped.slice(0, -1)) expect(length).toBeGreaterThanOrEqual(BLOCK_BYTES);
  });

  it('fails when the tool fails, and when the sink fails it stops the tool', async () => {
    const data = bytes(5000);
    await expect(dumpCommand(context(fakeRunner(data, 100, new Error('exit 1'))), { command: 'tool', args: [] }, collectingSink([]), 'db/x', { compressed: true })).rejects.toThrow('exit 1');
    const failing: EntrySink = {
      addFile: () => Promise.reject(new Error('stream drivers add no files')),
      async add(_path, stream) {
        stream.resume();
        throw new Error('disk full');
      },
    };
    await expect(dumpCommand(context(fakeRunner(bytes(BLOCK_BYTES * 4), 100)), { command: 'tool', args: [] }, failing, 'db/x', { compressed: true })).rejects.toThrow('disk full');
  });
});
