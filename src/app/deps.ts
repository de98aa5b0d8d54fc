/**
 * What every app function is handed: config, storage, process runner, logger, clock, environment,
 * the interrupt signal and a progress reporter. Nothing here is a module-level singleton; tests
 * build their own.
 */
import type { Config, TargetConfig } from '../config/load.js';
import type { DriverContext, Logger, ProcessRunner } from '../core/driver.js';
import { TimeoutError, UsageError } from '../core/errors.js';
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
  /** Aborted by SIGINT/SIGTERM, with an InterruptedError as its reason. */
  signal: AbortSignal;
  progress: Progress;
  host: string;
  version: string;
  /** An age identity file from --identity or BACKUPKIT_IDENTITY_FILE, with where it was given. */
  identityFile?: { file: string; source: string } | undefined;
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

/** A signal that aborts on interrupt, or with a TimeoutError once the target's timeout passes. */
export function withTimeout(signal: AbortSignal, timeoutMs: number, what: string): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new TimeoutError(`${what} timed out after ${formatDuration(timeoutMs)}`, { hint: 'Raise "timeout" for the target, or defaults.timeout.' })),
    timeoutMs,
  );
  timer.unref();
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

/** Record one run in history.jsonl; a failure to write history never hides the run's own result. */
export async function recordRun(
  deps: AppDeps,
  entry: { command: string; target: string | null; id: string | null; started: Date; error: unknown },
): Promise<void> {
  try {
    await deps.state.appendHistory({
      time: entry.started.toISOString(),
      command: entry.command,
      target: entry.target,
      id: entry.id,
      ok: entry.error === undefined,
      durationMs: deps.now().getTime() - entry.started.getTime(),
      error: entry.error === undefined ? null : entry.error instanceof Error ? entry.error.message : String(entry.error),
    });
  } catch (error) {
    deps.log.warn({ err: error }, 'could not write history.jsonl');
  }
}
