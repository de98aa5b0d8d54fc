/** Running the tools: streams in and out, exit codes, missing tools, and stopping a whole process group. */
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/driver.js';
import { OperationError, ToolFailedError, ToolMissingError } from '../../src/core/errors.js';
import { createRunner } from '../../src/drivers/spawn.js';
import { tempDir } from '../support/cli.js';
import { alive, until } from '../support/faults.js';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const runner = createRunner(quiet, (t) => t.replaceAll('s3cret', '***'));
const signal = () => new AbortController().signal;

describe('createRunner', () => {
  it('streams stdin through the tool and its stdout back, with the environment it is given beside the inherited one', async () => {
    const input = Readable.from([Buffer.from('one\n'), Buffer.from('two\n')]);
    const running = await runner.start(
      { command: '/bin/sh', args: ['-c', 'cat; printf "%s|%s" "$GREETING" "${PATH:+path}"'], env: { GREETING: 'hello' } },
      { signal: signal(), stdin: input },
    );
    const [out] = await Promise.all([text(running.stdout), running.done]);
    expect(out).toBe('one\ntwo\nhello|path');
  });

  it('collects the output of a short run, and takes stdin as a string', async () => {
    const result = await runner.run({ command: '/bin/sh', args: ['-c', 'tr a-z A-Z; echo warn >&2'] }, { signal: signal(), stdin: 'quiet words' });
    expect(result).toEqual({ stdout: 'QUIET WORDS', stderr: 'warn\n' });
  });

  it('reports the exit status of a tool that exits without reading the stdin it is given', async () => {
    const big = 'x'.repeat(8 << 20);
    const error = await runner.run({ command: '/bin/sh', args: ['-c', 'exit 4'] }, { signal: signal(), stdin: big }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolFailedError);
    expect((error as ToolFailedError).exitCodeOfTool).toBe(4);
  });

  it('reports a failure with the command (secrets masked), its exit code and the tail of its stderr', async () => {
    const failing = runner.run({ command: '/bin/sh', args: ['-c', 'echo "FATAL: password s3cret rejected" >&2; exit 3', 's3cret'] }, { signal: signal() });
    const error = await failing.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolFailedError);
    const failed = error as ToolFailedError;
    expect(failed.exitCodeOfTool).toBe(3);
    expect(failed.message).toContain('exited with code 3');
    expect(failed.message).toContain('FATAL: password *** rejected');
    expect(failed.message).not.toContain('s3cret');
  });

  it('names a tool that is not there, and one that cannot be run', async () => {
    const missing = path.join(tempDir(), 'pg_restore');
    await expect(runner.run({ command: missing, args: [] }, { signal: signal() })).rejects.toBeInstanceOf(ToolMissingError);
    const notRunnable = await runner.run({ command: tempDir(), args: [] }, { signal: signal() }).catch((e: unknown) => e);
    expect(notRunnable).toBeInstanceOf(OperationError);
    expect((notRunnable as Error).message).toMatch(/^cannot run /);
  });

  it('says which signal killed a tool', async () => {
    const error = await runner.run({ command: '/bin/sh', args: ['-c', 'kill -KILL $$'] }, { signal: signal() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolFailedError);
    expect((error as Error).message).toContain('was killed by SIGKILL');
  });

  it('stops the whole process group on abort, with the abort reason, the tool\'s own children too', async () => {
    const controller = new AbortController();
    const running = await runner.start({ command: '/bin/sh', args: ['-c', 'sleep 60 & echo $!; wait'] }, { signal: controller.signal });
    const grandchild = await new Promise<number>((resolve) => running.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))));
    expect(alive(grandchild)).toBe(true);
    const reason = new Error('timed out');
    controller.abort(reason);
    running.stdout.resume();
    await expect(running.done).rejects.toBe(reason);
    await until('the tool\'s own child to be stopped', () => !alive(grandchild), 5000);
  });

  it('stops the tool when its input fails, and reports the input\'s error', async () => {
    const broken = new Readable({ read() {} });
    const running = await runner.start({ command: '/bin/sh', args: ['-c', 'cat >/dev/null'] }, { signal: signal(), stdin: broken });
    running.stdout.resume();
    const reason = new OperationError('archive entry damaged');
    broken.destroy(reason);
    await expect(running.done).rejects.toBe(reason);
  });
});
