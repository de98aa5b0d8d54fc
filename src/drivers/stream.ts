/** Streaming a tool's stdout into an archive entry, and an archive entry into a tool's stdin. */
import { type Readable, Transform, type TransformCallback, pipeline } from 'node:stream';
import type { CommandSpec, DriverContext, Encoder, EntrySink } from '../core/driver.js';
import type { EntryRecord } from '../core/manifest.js';
import { BlockBatcher } from './blocks.js';

/**
 * Run `spec` and stream its stdout into `entry`, gathered into blocks of at least 256 KiB (the
 * steps after it cost per chunk, and tools write small ones), through `tap` when given (a
 * pass-through that counts units as the bytes go by); a failure on either side stops both.
 */
export async function dumpCommand(
  ctx: DriverContext,
  spec: CommandSpec,
  sink: EntrySink,
  entry: string,
  options: { compressed: boolean; encode?: Encoder; tap?: Transform },
): Promise<EntryRecord> {
  const proc = await ctx.runner.start(spec, { signal: ctx.signal });
  let record: EntryRecord;
  try {
    // pipeline's callback ignores the error: it reaches the sink by destroying the last stream.
    const ignore = () => undefined;
    const blocks = new BlockBatcher();
    const { tap, ...entryOptions } = options;
    const source = tap ? pipeline(proc.stdout, blocks, tap, ignore) : pipeline(proc.stdout, blocks, ignore);
    record = await sink.add(entry, source, entryOptions);
  } catch (error) {
    proc.kill(error);
    await proc.done.catch(() => undefined);
    throw error;
  }
  await proc.done;
  return record;
}

/** A pass-through that shows every chunk to `counter` (which counts units in a dump) on its way. */
export function countingTap(counter: { write(chunk: Buffer): void; end?(): void }): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      counter.write(chunk);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      counter.end?.();
      callback();
    },
  });
}

/** Run `spec` with `input` on its stdin; resolves when it exits 0. */
export async function restoreCommand(ctx: DriverContext, spec: CommandSpec, input: Readable): Promise<void> {
  const proc = await ctx.runner.start(spec, { signal: ctx.signal, stdin: input });
  proc.stdout.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) ctx.log.debug(line);
  });
  await proc.done;
}
