/**
 * clean: apply each target's retention policy. Flags replace the config's rules; a target with no
 * rule at all is never cleaned (exit 2). Archives go before their sidecars, so an interruption never
 * leaves a listed backup without its archive. Orphans (an archive with no sidecar, older than an
 * hour; a sidecar with no archive) are reported by --dry-run and removed by clean.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TargetConfig } from '../config/load.js';
import { parseDuration } from '../core/duration.js';
import { UsageError, errorMessage, exitCodeOf, ExitCode, type ExitCodeValue } from '../core/errors.js';
import { BACKUP_ID } from '../core/ids.js';
import type { Sidecar } from '../core/manifest.js';
import { type KeepReason, type RetentionPolicy, applyRetention, hasRule } from '../core/retention.js';
import { acquireLock } from '../storage/lock.js';
import { type AppDeps, recordRun, selectTargets } from './deps.js';

export interface CleanOptions {
  dryRun: boolean;
  /** Rules from flags; when any is set they replace the config's. */
  rules: RetentionPolicy;
}

export interface CleanResult {
  kept: { id: string; reasons: KeepReason[] }[];
  deleted: { id: string; bytes: number }[];
  freedBytes: number;
  dryRun: boolean;
  failures: { target: string; error: string; code: ExitCodeValue }[];
}

const ORPHAN_AGE_MS = 60 * 60 * 1000;

export async function cleanTargets(deps: AppDeps, names: string[], options: CleanOptions): Promise<CleanResult> {
  const result: CleanResult = { kept: [], deleted: [], freedBytes: 0, dryRun: options.dryRun, failures: [] };
  const targets = selectTargets(deps, names);
  const sidecars = await deps.storage.listSidecars((file, reason) => deps.log.warn(`skipping ${file}: ${reason}`));
  const orphans = await findOrphans(deps, sidecars);
  for (const target of targets) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = deps.now();
    try {
      const done = await cleanTarget(deps, target, sidecars.filter((s) => s.target === target.name), orphans.get(target.name) ?? [], options);
      result.kept.push(...done.kept);
      result.deleted.push(...done.deleted);
      if (!options.dryRun) await recordRun(deps, { command: 'clean', target: target.name, id: null, started, error: undefined });
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      deps.log.error({ target: target.name }, `clean of ${target.name} failed: ${errorMessage(error)}`);
      result.failures.push({ target: target.name, error: errorMessage(error), code: exitCodeOf(error) });
      await recordRun(deps, { command: 'clean', target: target.name, id: null, started, error });
    }
  }
  result.freedBytes = result.deleted.reduce((sum, d) => sum + d.bytes, 0);
  return result;
}

/** The policy for a target: the flags' rules if any, else the config's (target, then defaults). */
export function policyFor(target: TargetConfig, flags: RetentionPolicy): RetentionPolicy {
  if (hasRule(flags)) return flags;
  const { keepWithin, ...counts } = target.retention ?? {};
  return { ...counts, ...(keepWithin === undefined ? {} : { keepWithin: parseDuration(keepWithin) }) };
}

async function cleanTarget(deps: AppDeps, target: TargetConfig, sidecars: Sidecar[], orphans: Orphan[], options: CleanOptions) {
  const policy = policyFor(target, options.rules);
  if (!hasRule(policy)) {
    throw new UsageError(`target ${target.name} has no retention rule; nothing was deleted`, {
      hint: `Set "retention" for the target or in "defaults" (e.g. {"keepDaily": 7, "keepWeekly": 4}), or pass --keep-last, --keep-daily, ... or --retention-days.`,
    });
  }
  const orphaned = new Set(orphans.map((o) => o.id));
  const candidates = await Promise.all(
    sidecars.filter((s) => !orphaned.has(s.id)).map(async (s) => ({ id: s.id, createdAt: s.createdAt, good: await isGood(deps, target, s), sidecar: s })),
  );
  const decision = applyRetention(candidates, policy, deps.now());
  const kept = decision.kept.map(({ item, reasons }) => ({ id: item.id, reasons }));
  const deleted: { id: string; bytes: number }[] = [];
  for (const item of decision.removed) deleted.push({ id: item.id, bytes: item.sidecar.archive.size });
  for (const orphan of orphans) deleted.push({ id: orphan.id, bytes: orphan.bytes });
  for (const k of kept) deps.log.debug({ id: k.id, reasons: k.reasons }, 'keep');
  if (options.dryRun || deleted.length === 0) return { kept, deleted };

  const lock = await acquireLock(deps.storage.root, target.name, 'clean', deps.now());
  try {
    for (const item of decision.removed) {
      await deps.storage.remove(item.id);
      deps.log.info({ id: item.id }, `deleted ${item.id}`);
    }
    for (const orphan of orphans) {
      await deps.storage.remove(orphan.id);
      deps.log.info({ file: orphan.file }, `removed orphan ${orphan.file}`);
    }
  } finally {
    await lock.release();
  }
  return { kept, deleted };
}

/** Complete (its archive is there, at the recorded size) and whole (every part the target makes). */
async function isGood(deps: AppDeps, target: TargetConfig, sidecar: Sidecar): Promise<boolean> {
  const size = await stat(deps.storage.archivePath(sidecar.id)).then((s) => s.size, () => undefined);
  if (size !== sidecar.archive.size) return false;
  return sidecar.parts.includes('db') && (target.files.length === 0 || sidecar.parts.includes('files'));
}

interface Orphan {
  id: string;
  file: string;
  bytes: number;
}

async function findOrphans(deps: AppDeps, sidecars: Sidecar[]): Promise<Map<string, Orphan[]>> {
  const out = new Map<string, Orphan[]>();
  const listed = new Set(sidecars.map((s) => s.id));
  let names: string[];
  try {
    names = await readdir(deps.storage.root);
  } catch {
    return out;
  }
  const files = new Set(names);
  const now = deps.now().getTime();
  for (const name of names) {
    const match = /^(.+)\.(zip|json)$/.exec(name);
    const id = match?.[1];
    const target = id ? BACKUP_ID.exec(id)?.[1] : undefined;
    if (!id || !target) continue;
    const lonelyArchive = match[2] === 'zip' && !listed.has(id) && !files.has(`${id}.json`);
    const lonelySidecar = match[2] === 'json' && listed.has(id) && !files.has(`${id}.zip`);
    if (!lonelyArchive && !lonelySidecar) continue;
    const file = path.join(deps.storage.root, name);
    const info = await stat(file);
    // An archive without its sidecar may still be being written: only an old one is an orphan.
    if (lonelyArchive && now - info.mtimeMs <= ORPHAN_AGE_MS) continue;
    out.set(target, [...(out.get(target) ?? []), { id, file, bytes: info.size }]);
  }
  return out;
}
