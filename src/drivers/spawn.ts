/**
 * Running the dump and restore tools. Children get argument arrays, never a shell string, and
 * run in their own process group so that a timeout or Ctrl-C stops the whole group. A failure
 * reports the command (secrets masked), its exit code and the tail of its stderr.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ResultPromise } from 'execa';
import type { CommandSpec, Logger, ProcessRunner, RunningCommand } from '../core/driver.js';
import { BackupkitError, ToolFailedError, ToolMissingError } from '../core/errors.js';

const STDERR_TAIL_BYTES = 4096;
const KILL_GRACE_MS = 5000;

export function displayCommand(spec: CommandSpec): string {
  return [path.basename(spec.command), ...spec.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

export function createRunner(log: Logger, redact: (text: string) => string): ProcessRunner {
  const start = async (spec: CommandSpec, options: { signal: AbortSignal; stdin?: Readable | string }) => {
    const shown = redact(displayCommand(spec));
    log.debug({ command: shown }, 'starting');
    // execa is loaded on the first child: it costs about 0.1 s of start-up that list, verify and
    // inspect do not need.
    const { execa } = await import('execa');
    if (options.signal.aborted) throw options.signal.reason;
    const child: ResultPromise = execa(spec.command, spec.args, {
      env: spec.env ?? {},
      extendEnv: true,
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      stdin: options.stdin === undefined ? 'ignore' : 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      encoding: 'buffer',
      detached: true,
      cleanup: true,
      reject: true,
      stripFinalNewline: false,
    });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-STDERR_TAIL_BYTES);
      for (const line of text.split('\n')) if (line.trim()) log.debug({ tool: path.basename(spec.command) }, redact(line));
    });
    if (typeof options.stdin === 'string') child.stdin?.end(options.stdin);
    else if (options.stdin) {
      const input = options.stdin;
      input.once('error', (error) => kill(error));
      child.stdin?.on('error', () => {
        // The child closed its stdin (it exited or failed): its exit status tells why.
      });
      input.pipe(child.stdin!);
    }

    let killTimer: NodeJS.Timeout | undefined;
    let killedFor: unknown;
    const signalGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const kill = (reason?: unknown) => {
      if (killedFor !== undefined) return;
      killedFor = reason ?? new Error('stopped');
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const onAbort = () => kill(options.signal.reason);
    options.signal.addEventListener('abort', onAbort, { once: true });

    const done = child.then(
      () => undefined,
      (error: { code?: string; exitCode?: number; signal?: string }) => {
        if (options.signal.aborted) throw options.signal.reason;
        if (killedFor instanceof BackupkitError) throw killedFor;
        if (error.code === 'ENOENT') {
          throw new ToolMissingError(`${spec.command} not found`, { cause: error });
        }
        throw new ToolFailedError(shown, error.exitCode, error.signal, redact(tail.trim()));
      },
    );
    const settled = done.finally(() => {
      options.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
    });
    settled.catch(() => undefined);
    return { child, done: settled, kill };
  };

  return {
    async start(spec, options): Promise<RunningCommand> {
      const { child, done, kill } = await start(spec, options);
      return { stdout: child.stdout as Readable, done, kill };
    },
    async run(spec, options) {
      const { child, done } = await start(spec, options);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (c: Buffer) => out.push(c));
      child.stderr?.on('data', (c: Buffer) => err.push(c));
      await done;
      return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
    },
  };
}
