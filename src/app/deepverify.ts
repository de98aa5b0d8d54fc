/**
 * verify --deep (contract: `verify --deep`): a backup that passed its checksums is restored into a
 * scratch on the target's own server, and every unit's count there is compared with the manifest.
 *
 * The scratch is a temporary database named so that a later run on any host can tell whose it is
 * (core/scratch.ts), a temporary file in the state folder for sqlite, or the database alias a
 * Django target names in `verifyInto`. It is dropped on every path: a mismatch, a failed tool, a
 * timeout, an interrupt. What a killed run leaves (SIGKILL, a power cut) is dropped by the next
 * deep verify of a target on the same server: scratch databases whose process is gone on this
 * host, or that are older than twice the target's timeout (at least an hour) when made elsewhere.
 */
import { randomInt } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { TargetConfig } from '../config/load.js';
import type { Driver } from '../core/driver.js';
import { ExitCode, errorMessage, exitCodeOf } from '../core/errors.js';
import type { Manifest, Unit } from '../core/manifest.js';
import { SCRATCH_PREFIX, hostTag, isStaleScratch, parseScratchName, scratchName } from '../core/scratch.js';
import type { ArchiveReader } from '../core/storage.js';
import { isProcessAlive, pidSpace } from '../storage/process.js';
import { type AppDeps, driverContext, withTimeout } from './deps.js';
import { applyRestore } from './restore.js';

export interface CountMismatch {
  unit: string;
  /** The count in the manifest. */
  expected: number;
  /** The count after the restore; null when the unit is not there at all. */
  actual: number | null;
}

/** A restore check's outcome: passed, failed (with its exit code), or skipped with the reason. */
export type RestoreCheck =
  | { status: 'ok' }
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; error: string; code: number; mismatches: CountMismatch[] };

/** How long dropping a scratch may take, whatever stopped the run. */
const DROP_TIMEOUT_MS = 2 * 60 * 1000;

/** Restore `archive` (the plain zip of a backup whose checks passed) into a scratch and count. Throws only when interrupted. */
export async function restoreCheck(deps: AppDeps, archive: ArchiveReader, manifest: Manifest): Promise<RestoreCheck> {
  const target = deps.config.targets.get(manifest.target);
  if (!target) return { status: 'skipped', reason: `its target ${manifest.target} is not in ${deps.config.file}` };
  if (target.driver.name !== manifest.driver) return { status: 'skipped', reason: `it was made by the ${manifest.driver} driver, and target ${target.name} uses ${target.driver.name}` };
  if (!manifest.parts.includes('db')) return { status: 'skipped', reason: 'it holds no database dump' };
  const plan = target.driver.scratch(target.options, manifest.source);
  if (plan.kind === 'unavailable') return { status: 'skipped', reason: plan.reason };
  const ctx = driverContext(deps, target, deps.signal, manifest.id);
  let scratch: { into: string; name: string; drop: () => Promise<void> } | undefined;
  try {
    await target.driver.checkTools?.(ctx, target.options, 'restore');
    await deps.state.ensure();
    await removeStale(deps, target, plan.kind);
    scratch = await makeScratch(deps, target, plan);
    deps.log.info({ id: manifest.id, scratch: scratch.name }, `${manifest.id}: test restore into ${scratch.name}`);
    const options = target.driver.withInto(target.options, scratch.into, deps.cwd);
    await applyRestore(deps, target, archive, manifest, options, { only: undefined, into: scratch.into, units: manifest.units, source: manifest.source, flush: plan.kind === 'alias' }, { db: true, files: false });
    const counted = manifest.units.filter((u): u is Unit & { count: number } => u.count !== null);
    const { signal, dispose } = withTimeout(deps.signal, target.timeoutMs, `counting the units of ${manifest.id} after its test restore`);
    const actual = await abortable(target.driver.countUnits(driverContext(deps, target, signal, manifest.id), options, counted), signal).finally(dispose);
    const mismatches = counted.map((u, i) => ({ unit: u.name, expected: u.count, actual: actual[i] ?? null })).filter((m) => m.actual !== m.expected);
    if (mismatches.length === 0) return { status: 'ok' };
    const what = mismatches.map((m) => (m.actual === null ? `${m.unit} is missing (the manifest says ${m.expected})` : `${m.unit} has ${m.actual} (the manifest says ${m.expected})`));
    return { status: 'failed', error: `count mismatch after a test restore: ${what.join('; ')}`, code: ExitCode.verification, mismatches };
  } catch (error) {
    if (deps.signal.aborted) throw deps.signal.reason;
    return { status: 'failed', error: `test restore failed: ${errorMessage(error)}`, code: exitCodeOf(error), mismatches: [] };
  } finally {
    if (scratch) {
      await scratch.drop().then(
        () => deps.log.debug({ scratch: scratch!.name }, 'scratch dropped'),
        (error: unknown) => deps.log.error({ scratch: scratch!.name }, `could not drop the scratch ${scratch!.name}: ${errorMessage(error)}; the next verify --deep of ${target.name} drops it`),
      );
    }
  }
}

/** A new scratch: a database name on the server, a file in the state folder, or the alias emptied. */
async function makeScratch(deps: AppDeps, target: TargetConfig, plan: { kind: 'database' } | { kind: 'file' } | { kind: 'alias'; alias: string }) {
  const driver: Driver = target.driver;
  if (plan.kind === 'file') {
    // A folder of its own: the restore's temporary file and any journal land in it too.
    const dir = deps.state.tempPath(target.name, `verify-${randomInt(36 ** 4).toString(36)}`);
    await mkdir(dir, { mode: 0o700 });
    return { into: path.join(dir, 'scratch.db'), name: dir, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const name = plan.kind === 'alias' ? plan.alias : scratchName(target.name, { host: ownHostTag(deps), pid: process.pid, started: deps.now() }, randomInt(36 ** 4) / 36 ** 4);
  const drop = async () => {
    const { signal, dispose } = withTimeout(new AbortController().signal, DROP_TIMEOUT_MS, `dropping the scratch ${name}`);
    try {
      await abortable(driver.dropScratch!(driverContext(deps, target, signal, target.name), target.options, name), signal);
    } finally {
      dispose();
    }
  };
  return { into: name, name, drop };
}

/**
 * This process's host tag: the host name and the pid namespace, so that a container sharing its
 * host name with another never judges the other's scratch by a pid it cannot see.
 */
function ownHostTag(deps: Pick<AppDeps, 'host'>): string {
  return hostTag(`${deps.host}\0${pidSpace() ?? ''}`);
}

/** Drop the scratch databases dead runs left on the target's server; the state folder's files too. */
async function removeStale(deps: AppDeps, target: TargetConfig, kind: 'database' | 'file' | 'alias'): Promise<void> {
  const removed = await deps.state.removeLeftovers(target.name);
  if (removed.length > 0) deps.log.info({ files: removed }, `removed ${removed.length} leftover file(s) of an interrupted run`);
  if (kind !== 'database' || !target.driver.listScratch || !target.driver.dropScratch) return;
  const ctx = driverContext(deps, target, deps.signal, target.name);
  const here = { host: ownHostTag(deps), now: deps.now(), maxAgeMs: Math.max(2 * target.timeoutMs, 60 * 60 * 1000), alive: isProcessAlive };
  try {
    for (const name of await target.driver.listScratch(ctx, target.options, SCRATCH_PREFIX)) {
      const parsed = parseScratchName(name);
      if (!parsed || !isStaleScratch(parsed, here)) continue;
      await target.driver.dropScratch(ctx, target.options, name);
      deps.log.info({ scratch: name }, `dropped ${name}, the scratch database of an interrupted verify --deep`);
    }
  } catch (error) {
    if (deps.signal.aborted) throw deps.signal.reason;
    deps.log.warn(`could not clear old scratch databases of ${target.name}: ${errorMessage(error)}`);
  }
}

/** `promise`, or the signal's reason as soon as it aborts (for clients that take no signal). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
