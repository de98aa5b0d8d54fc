/**
 * Running the dump and restore tools. Children get argument arrays, never a shell string, and
 * run in their own process group so that a timeout or Ctrl-C stops the whole group. A failure
 * reports the command (secrets masked), its exit code and the tail of its stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { CommandSpec, Logger, ProcessRunner, RunningCommand } from '../core/driver.js';
import { BackupkitError, OperationError, ToolFailedError, ToolMissingError } from '../core/errors.js';

const STDERR_TAIL_BYTES = 4096;
const KILL_GRACE_MS = 5000;

export function displayCommand(spec: CommandSpec): string {
  return [path.basename(spec.command), ...spec.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/** Children still running: their process groups are stopped if backupkit exits before they do. */
const running = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of running) {
      try {
        if (c.pid !== undefined) process.kill(-c.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

/** How a child ended: its exit code, or the signal that killed it, or why it could not start. */
type Outcome = { code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException };

export function createRunner(log: Logger, redact: (text: string) => string): ProcessRunner {
  const start = async (spec: CommandSpec, options: { signal: AbortSignal; stdin?: Readable | string }) => {
    const shown = redact(displayCommand(spec));
    log.debug({ command: shown }, 'starting');
    if (options.signal.aborted) throw options.signal.reason;
    // Its own process group (detached), so that a timeout or Ctrl-C stops what the tool starts too.
    const child = spawn(spec.command, spec.args, {
      env: { ...process.env, ...spec.env },
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const ended = new Promise<Outcome>((resolve) => {
      child.once('error', (error) => resolve({ error }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    if (child.pid !== undefined) track(child);
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-STDERR_TAIL_BYTES);
      for (const line of text.split('\n')) if (line.trim()) log.debug({ tool: path.basename(spec.command) }, redact(line));
    });
    child.stdin?.on('error', () => {
      // The child closed its stdin (it exited or failed): its exit status tells why.
    });
    if (typeof options.stdin === 'string') child.stdin?.end(options.stdin);
    else if (options.stdin) {
      const input = options.stdin;
      input.once('error', (error) => kill(error));
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

    const done = ended.then((outcome) => {
      if ('code' in outcome && outcome.code === 0) return;
      if (options.signal.aborted) throw options.signal.reason;
      if (killedFor instanceof BackupkitError) throw killedFor;
      if ('error' in outcome) {
        if (outcome.error.code === 'ENOENT') throw new ToolMissingError(`${spec.command} not found`, { cause: outcome.error });
        throw new OperationError(`cannot run ${shown}: ${outcome.error.message}`, { cause: outcome.error });
      }
      throw new ToolFailedError(shown, outcome.code ?? undefined, outcome.signal ?? undefined, redact(tail.trim()));
    });
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
      return { stdout: child.stdout!, done, kill };
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
