/**
 * One archive stream fed to several storages at once. A chunk is handed to every storage still
 * writing, and the write calls back once each has called back: the slowest storage sets the pace,
 * and no chunk is let go (the zip writer reuses its buffers) while any storage still holds it. A
 * storage that fails is dropped and named; the others go on. Only when every one has failed does
 * the stream itself fail.
 */
import { Writable } from 'node:stream';

export interface FanOutSink {
  name: string;
  stream: Writable;
}

export class FanOut extends Writable {
  /** The storages that failed, with their errors. */
  readonly failures = new Map<string, Error>();

  constructor(
    private readonly sinks: FanOutSink[],
    private readonly onFailure: (name: string, error: Error) => void = () => undefined,
  ) {
    super({ highWaterMark: 4 << 20 });
    for (const sink of sinks) sink.stream.on('error', (error: Error) => this.drop(sink, error));
  }

  get live(): FanOutSink[] {
    return this.sinks.filter((s) => !this.failures.has(s.name));
  }

  private drop(sink: FanOutSink, error: Error): void {
    if (this.failures.has(sink.name)) return;
    this.failures.set(sink.name, error);
    this.onFailure(sink.name, error);
  }

  private allFailed(): Error {
    const [first] = this.failures.values();
    return first ?? new Error('no storage to write to');
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const live = this.live;
    if (live.length === 0) return callback(this.allFailed());
    Promise.all(
      live.map(
        (sink) =>
          new Promise<void>((resolve) => {
            let pending = chunks.length;
            const onError = (error: Error) => {
              this.drop(sink, error);
              resolve();
            };
            sink.stream.once('error', onError);
            for (const { chunk } of chunks) {
              sink.stream.write(chunk, (error) => {
                if (error) return onError(error);
                if (--pending === 0) {
                  sink.stream.off('error', onError);
                  resolve();
                }
              });
            }
          }),
      ),
    ).then(() => callback(this.live.length === 0 ? this.allFailed() : null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    Promise.all(
      this.live.map(
        (sink) =>
          new Promise<void>((resolve) => {
            const onError = (error: Error) => {
              this.drop(sink, error);
              resolve();
            };
            sink.stream.once('error', onError);
            sink.stream.end((error?: Error | null) => {
              if (error) return onError(error);
              sink.stream.off('error', onError);
              resolve();
            });
          }),
      ),
    ).then(() => callback(this.live.length === 0 ? this.allFailed() : null));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const sink of this.sinks) sink.stream.destroy();
    callback(error);
  }
}
