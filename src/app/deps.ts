/**
 * What every app function is handed: config, storage, process runner, logger, clock, environment,
 * the interrupt signal and a progress reporter. Nothing here is a module-level singleton; tests
 * build their own.
 */
import type { Config, TargetConfig } from '../config/load.js';
import { redact } from '../config/secrets.js';
import type { DriverContext, Logger, ProcessRunner } from '../core/driver.js';
import { TimeoutError, ToolFailedError, UsageError, errorMessage, exitCodeOf } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import { suggest } from '../core/suggest.js';
import type { StorageSet } from '../storage/registry.js';
import type { StateDir } from '../storage/state.js';

export interface Progress {
  /** Begin a phase; `bytes` then reports what has passed since. */
  start(text: string, totalBytes?: number): void;
  bytes(n: number): void;
  stop(): void;
}

export const noProgress: Progress = { start() {}, bytes() {}, stop() {} };

/** A run as it starts: what the reporter's listeners see first (a ping's /start). */
export interface RunStart {
  command: string;
  target: string | null;
  started: Date;
}

/** A finished run: the history line, and what notifications and metrics are made of. */
export interface RunReport extends RunStart {
  id: string | null;
  ok: boolean;
  durationMs: number;
  /** The error's message (secrets are scrubbed by whoever prints or sends it). */
  error: string | null;
  /** The exit code the outcome maps to: 0 when ok. */
  code: number;
  /** A failed tool's stderr tail, when a tool failed. */
  stderrTail: string | null;
  /** The archive's size, for a run that made one. */
  size: number | null;
}

/**
 * Told of every run of backup, restore, verify, clean, auto, copy and delete, whoever started it
 * (a terminal, a crontab line, the daemon). A listener must not throw and must bound its own time:
 * notifications and metrics never change a run's outcome.
 */
export interface RunListener {
  runStarted?(run: RunStart): Promise<void>;
  runFinished?(run: RunReport): Promise<void>;
}

export interface AppDeps {
  config: Config;
  /** The config's storages (narrowed by --storage). */
  storages: StorageSet;
  /** history.jsonl and the drivers' scratch files. */
  state: StateDir;
  runner: ProcessRunner;
  log: Logger;
  now: () => Date;
  env: NodeJS.ProcessEnv;
  /** The folder the command runs in: paths the operator types (an archive ref, sqlite's --into) resolve against it. */
  cwd: string;
  /** Aborted by SIGINT/SIGTERM, with an InterruptedError as its reason. */
  signal: AbortSignal;
  progress: Progress;
  host: string;
  version: string;
  /** An age identity file from --identity or BACKUPKIT_IDENTITY_FILE, with where it was given. */
  identityFile?: { file: string; source: string } | undefined;
  /** Told of every run as it starts and ends (notifications, metrics); history is written first. */
  listeners?: RunListener[] | undefined;
}

export function getTarget(deps: Pick<AppDeps, 'config'>, name: string): TargetConfig {
  const target = deps.config.targets.get(name);
  if (target) return target;
  const known = [...deps.config.targets.keys()];
  const hint = suggest(name, known);
  throw new UsageError(`unknown target "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`, {
    hint: known.length > 0 ? `Targets in ${deps.config.file}: ${known.join(', ')}` : `${deps.config.file} defines no targets.`,
  });
}

/** The named targets, or every target when none are named. */
export function selectTargets(deps: Pick<AppDeps, 'config'>, names: string[]): TargetConfig[] {
  if (names.length === 0) return [...deps.config.targets.values()];
  return names.map((name) => getTarget(deps, name));
}

/** The longest delay setTimeout takes (about 24.8 days); it fires at once for anything longer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A signal that aborts on interrupt, or with a TimeoutError once the target's timeout passes. A
 * timeout longer than setTimeout can wait ("30d") is waited out in steps, never cut short.
 */
export function withTimeout(signal: AbortSignal, timeoutMs: number, what: string): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout;
  const wait = (left: number) => {
    timer = setTimeout(() => {
      if (left > MAX_TIMER_MS) wait(left - MAX_TIMER_MS);
      else controller.abort(new TimeoutError(`${what} timed out after ${formatDuration(timeoutMs)}`, { hint: 'Raise "timeout" for the target, or defaults.timeout.' }));
    }, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  wait(timeoutMs);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

export function driverContext(deps: AppDeps, target: TargetConfig, signal: AbortSignal, tempId: string): DriverContext {
  return {
    target: target.name,
    signal,
    log: deps.log,
    runner: deps.runner,
    env: deps.env,
    bin: target.bin,
    tempPath: (name) => deps.state.tempPath(tempId, name),
  };
}

/** A run starts: its listeners are told (a ping's /start); returns its start time for recordRun. */
export async function beginRun(deps: AppDeps, command: string, target: string | null): Promise<Date> {
  const started = deps.now();
  await Promise.all(
    (deps.listeners ?? []).map((listener) =>
      listener.runStarted?.({ command, target, started }).catch((error: unknown) => deps.log.warn(`run listener: ${errorMessage(error)}`)),
    ),
  );
  return started;
}

/**
 * A run ends: one line in history.jsonl (scrubbed of the config's secrets), then its listeners are
 * told. A failure to write history or to notify never hides the run's own result.
 */
export async function recordRun(
  deps: AppDeps,
  entry: { command: string; target: string | null; id: string | null; started: Date; error: unknown; size?: number | null },
): Promise<void> {
  const failed = entry.error !== undefined;
  const report: RunReport = {
    command: entry.command,
    target: entry.target,
    id: entry.id,
    started: entry.started,
    ok: !failed,
    durationMs: deps.now().getTime() - entry.started.getTime(),
    error: failed ? errorMessage(entry.error) : null,
    code: failed ? exitCodeOf(entry.error) : 0,
    stderrTail: entry.error instanceof ToolFailedError ? entry.error.stderrTail || null : null,
    size: entry.size ?? null,
  };
  try {
    await deps.state.appendHistory({
      time: report.started.toISOString(),
      command: report.command,
      target: report.target,
      id: report.id,
      ok: report.ok,
      durationMs: report.durationMs,
      error: report.error === null ? null : redact(report.error, deps.config.secrets),
    });
  } catch (error) {
    deps.log.warn({ err: error }, 'could not write history.jsonl');
  }
  await Promise.all(
    (deps.listeners ?? []).map((listener) =>
      listener.runFinished?.(report).catch((error: unknown) => deps.log.warn(`run listener: ${errorMessage(error)}`)),
    ),
  );
}
