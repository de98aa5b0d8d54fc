/**
 * doctor: the health of each target, for operators and monitoring probes (contract: `doctor`).
 * Checks per target, in this order: `config`, `tools`, `database`, `storage:<name>` for each of
 * its storages, `backup-age`, `verify`. Every check runs at once with its own time limit, so a
 * dead server or a hung bucket is a failed check, never a hang; each failure carries a hint
 * saying what to do. Nothing is changed: probes write one small object and remove it. Work shared
 * by targets (probing a storage, listing it, reading history) is done once.
 */
import { setMaxListeners } from 'node:events';
import type { TargetConfig } from '../config/load.js';
import { BackupkitError, OperationError, errorMessage } from '../core/errors.js';
import type { Storage, StorageListing } from '../core/storage.js';
import type { HistoryEntry } from '../storage/state.js';
import { type AppDeps, selectTargets } from './deps.js';
import { backupAgeCheck, formatSpan, verifyCheck } from './doctor/backups.js';
import { configCheck, databaseCheck, toolsCheck } from './doctor/checks.js';

export interface Check {
  name: string;
  ok: boolean;
  /** One line, no secrets. */
  detail: string;
  /** What to do about a failed check. */
  hint?: string;
}

export interface TargetHealth {
  target: string;
  ok: boolean;
  checks: Check[];
}

export interface DoctorResult {
  ok: boolean;
  targets: TargetHealth[];
}

export interface DoctorOptions {
  /** The time each check may take. */
  timeoutMs: number;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

/** What a check found: passed or not, and why. A thrown error is a failed check too. */
export type Outcome = Omit<Check, 'name'>;

/** A storage's listing, or why it could not be had. */
export type ListingResult = { storage: Storage; listing: StorageListing } | { storage: Storage; error: string };

/** The work several targets' checks share, each piece started once, on first use. */
export interface SharedWork {
  probe(storage: Storage): Promise<Outcome>;
  listings(): Promise<ListingResult[]>;
  history(): Promise<HistoryEntry[]>;
}

/** An error thrown when a check's time is up. */
class CheckTimeout extends OperationError {}

export async function runDoctor(deps: AppDeps, names: string[], options: DoctorOptions): Promise<DoctorResult> {
  const targets = selectTargets(deps, names);
  // Every check listens to the interrupt signal at once: one of its own, with room for them all.
  const signal = AbortSignal.any([deps.signal]);
  setMaxListeners(targets.length * (6 + deps.storages.all.length) + deps.storages.all.length + 10, signal);
  const checking = { ...deps, signal };
  const shared = sharedWork(checking, options.timeoutMs);
  const results = await Promise.all(targets.map((target) => checkTarget(checking, target, shared, options.timeoutMs)));
  if (deps.signal.aborted) throw deps.signal.reason;
  return { ok: results.every((r) => r.ok), targets: results };
}

async function checkTarget(deps: AppDeps, target: TargetConfig, shared: SharedWork, timeoutMs: number): Promise<TargetHealth> {
  const where = describeSource(target);
  const run = (name: string, waitingFor: string, check: (signal: AbortSignal) => Promise<Outcome>) => runCheck(deps, name, timeoutMs, waitingFor, check);
  // The target's own storages, as --storage narrows them.
  const storages = deps.storages.all.filter((s) => target.storages.includes(s.name));
  const checks = await Promise.all([
    run('config', 'the config', async () => configCheck(deps, target)),
    run('tools', `the ${target.driver.name} tools`, (signal) => toolsCheck(deps, target, signal)),
    run('database', where, (signal) => databaseCheck(deps, target, signal)),
    ...storages.map(async (storage): Promise<Check> => ({ name: `storage:${storage.name}`, ...(await shared.probe(storage)) })),
    run('backup-age', 'listing the storages', async () => backupAgeCheck(deps, target, await shared.listings())),
    run('verify', 'reading history', async () => verifyCheck(deps, target, await shared.history())),
  ]);
  return { target: target.name, ok: checks.every((c) => c.ok), checks };
}

function sharedWork(deps: AppDeps, timeoutMs: number): SharedWork {
  const probes = new Map<string, Promise<Outcome>>();
  let listings: Promise<ListingResult[]> | undefined;
  let history: Promise<HistoryEntry[]> | undefined;
  return {
    probe(storage) {
      let probe = probes.get(storage.name);
      if (!probe) {
        probe = outcomeOf(deps, timeoutMs, storage.location, async (signal) => ({ ok: true, detail: await storage.probe(signal) }));
        probes.set(storage.name, probe);
      }
      return probe;
    },
    listings() {
      listings ??= Promise.all(
        deps.storages.all.map((storage) =>
          bounded(deps.signal, timeoutMs, storage.location, () => storage.list()).then(
            (listing): ListingResult => ({ storage, listing }),
            (error: unknown): ListingResult => {
              if (deps.signal.aborted) throw deps.signal.reason;
              return { storage, error: oneLine(errorMessage(error)) };
            },
          ),
        ),
      );
      return listings;
    },
    history() {
      history ??= deps.state.readHistory();
      return history;
    },
  };
}

async function runCheck(deps: AppDeps, name: string, timeoutMs: number, waitingFor: string, check: (signal: AbortSignal) => Promise<Outcome>): Promise<Check> {
  const outcome = await outcomeOf(deps, timeoutMs, waitingFor, check);
  return { name, ...outcome };
}

/** The check's outcome within `timeoutMs`; its failure or timeout is a failed outcome, an interrupt is thrown. */
async function outcomeOf(deps: AppDeps, timeoutMs: number, waitingFor: string, check: (signal: AbortSignal) => Promise<Outcome>): Promise<Outcome> {
  try {
    const outcome = await bounded(deps.signal, timeoutMs, waitingFor, check);
    return { ok: outcome.ok, detail: oneLine(outcome.detail), ...(outcome.ok || !outcome.hint ? {} : { hint: outcome.hint }) };
  } catch (error) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const hint = error instanceof BackupkitError ? error.hint : undefined;
    return { ok: false, detail: oneLine(errorMessage(error)), ...(hint ? { hint } : {}) };
  }
}

/**
 * `run` given a signal that aborts on interrupt or once `timeoutMs` has passed; settles then at
 * the latest, even if `run` does not heed its signal.
 */
export async function bounded<T>(parent: AbortSignal, timeoutMs: number, waitingFor: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onParent = () => controller.abort(parent.reason);
  const timer = setTimeout(
    () =>
      controller.abort(
        new CheckTimeout(`no answer from ${waitingFor} within ${formatSpan(timeoutMs, { exact: true })}`, {
          hint: 'Check that it is up and reachable (a firewall that drops packets looks like this), or allow more time with --timeout.',
        }),
      ),
    timeoutMs,
  );
  timer.unref();
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  const stopped = new Promise<never>((_, reject) => {
    if (controller.signal.aborted) reject(controller.signal.reason);
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  stopped.catch(() => undefined);
  try {
    return await Promise.race([Promise.resolve().then(() => run(controller.signal)), stopped]);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener('abort', onParent);
  }
}

/** Where the target's data lives, for messages: host:port/database, or a path. */
function describeSource(target: TargetConfig): string {
  try {
    const source = target.driver.describe(target.options);
    if (source.host) return `${source.host}${source.port ? `:${source.port}` : ''}${source.database ? `/${source.database}` : ''}`;
    return source.path ?? source.database ?? 'the database';
  } catch {
    return 'the database';
  }
}

/** A message on one line: its first line, and its last (a tool's own error) when there are more. */
export function oneLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  if (lines.length <= 1) return lines[0] ?? '';
  return `${lines[0]} ${lines.at(-1)}`;
}
