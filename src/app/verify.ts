/**
 * verify: check archives (every backup in the storages when no refs are given); with `deep`, also
 * restore each into a scratch on its target's server and compare the counts (deepverify.ts).
 */
import { ExitCode, OperationError, UsageError, errorMessage, exitCodeOf } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import type { ArchiveReader } from '../core/storage.js';
import { checkArchive, type CheckName as ArchiveCheck, type CheckResult } from '../pipeline/verify.js';
import { readCatalog } from './catalog.js';
import { checkBase } from './chain.js';
import { type CountMismatch, type RestoreCheck, restoreCheck } from './deepverify.js';
import { plainArchive } from './keys.js';
import { type AppDeps, beginRun, recordRun } from './deps.js';
import { MissingBackupError, type ResolvedRef, resolveRef } from './refs.js';

export type CheckName = ArchiveCheck | 'restore';

export interface VerifyResult {
  id: string;
  ok: boolean;
  checks: CheckName[];
  error: string | null;
  /** The storage whose copy was checked (absent for an archive given by path). */
  storage?: string;
  /** --deep: why the test restore was not done (the result is still ok when the rest passed). */
  skipped?: string;
  /** --deep: the units whose count after the test restore differs from the manifest's. */
  mismatches?: CountMismatch[];
}

export interface VerifyOptions {
  /** Only this target's backups (and its "latest"). */
  target: string | undefined;
  /** Also restore each backup into a scratch and compare every unit's count (`verify --deep`). */
  deep?: boolean | undefined;
}

/** A result and the exit code its failure calls for (3, or 2 when the keys given do not fit). */
export interface VerifyOutcome extends VerifyResult {
  code: number;
}

/** The outcomes, and the storages that could not be listed (verify of everything then fails, exit 1). */
export async function verifyBackups(
  deps: AppDeps,
  refs: string[],
  options: VerifyOptions,
): Promise<{ outcomes: VerifyOutcome[]; unlisted: { storage: string; error: string }[] }> {
  const results: VerifyOutcome[] = [];
  let unlisted: { storage: string; error: string }[] = [];
  const items: { id: string; target: string | null; resolved: ResolvedRef }[] = [];
  if (refs.length === 0) {
    const { backups, failures } = await readCatalog(deps);
    unlisted = failures;
    for (const backup of backups.filter((b) => !options.target || b.sidecar.target === options.target)) {
      // Every copy is checked: a backup may be good in one storage and damaged in another.
      for (const storage of backup.storages) {
        const { sidecar } = backup;
        items.push({
          id: sidecar.id,
          target: sidecar.target,
          resolved: { name: sidecar.archive.file, sidecar, byPath: false, storages: [storage], open: () => storage.openArchive(sidecar.id, sidecar.archive.file) },
        });
      }
    }
  } else {
    for (const ref of refs) {
      try {
        const resolved = await resolveRef(deps, ref, options.target);
        items.push({ id: resolved.sidecar?.id ?? ref, target: resolved.sidecar?.target ?? null, resolved });
      } catch (error) {
        // A ref that names no backup is a missing archive, as verify reports it; a ref that cannot
        // be one (a typo, a path that does not exist) is a usage error, before anything is checked.
        if (error instanceof UsageError && !(error instanceof MissingBackupError)) throw error;
        results.push({ id: ref, ok: false, checks: [], error: errorMessage(error), code: ExitCode.verification });
      }
    }
  }
  // A backup held by several storages is restored once: its other copies are the same bytes.
  const restored = new Map<string, RestoreCheck>();
  const bases = new Map<string, Promise<{ manifest: Manifest | undefined } | string>>();
  for (const item of items) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = await beginRun(deps, 'verify', item.target);
    const storage = item.resolved.storages[0]?.name;
    deps.progress.start(`verifying ${item.id}${storage && deps.storages.all.length > 1 ? ` in ${storage}` : ''}`);
    let checked: Checked;
    try {
      checked = await check(deps, item.resolved, options.deep ? restored : undefined).finally(() => deps.progress.stop());
      // A differential backup is only as good as its base.
      const base = checked.manifest?.base ?? item.resolved.sidecar?.base;
      if (checked.ok && base !== undefined) {
        const baseCheck = await checkBase(deps, base, checked.manifest, bases);
        checked = baseCheck.ok ? { ...checked, checks: [...checked.checks, 'base' as const].sort() } : { ...checked, ok: false, error: baseCheck.error };
      }
    } catch (error) {
      await recordRun(deps, { command: 'verify', target: item.target, id: item.id, started, error });
      // A storage that fails mid-check fails this copy's check (exit 1); the others are still checked.
      if (!(error instanceof OperationError) || !storage) throw error;
      deps.log.error({ id: item.id, storage }, `${item.id} (${storage}): ${errorMessage(error)}`);
      results.push({ id: item.id, ok: false, checks: [], error: errorMessage(error), storage, code: ExitCode.failed });
      continue;
    }
    const id = checked.manifest?.id ?? item.id;
    const deep = checked.restore?.status === 'skipped' ? { skipped: checked.restore.reason } : checked.restore?.status === 'failed' && checked.restore.mismatches.length > 0 ? { mismatches: checked.restore.mismatches } : {};
    results.push({ id, ok: checked.ok, checks: checked.checks, error: checked.error, ...(storage ? { storage } : {}), ...deep, code: checked.ok ? ExitCode.ok : (checked.code ?? ExitCode.verification) });
    if (!checked.ok) deps.log.error({ id, storage }, `${id}${storage ? ` (${storage})` : ''}: ${checked.error}`);
    if (checked.restore?.status === 'skipped') deps.log.warn({ id }, `${id}: test restore skipped: ${checked.restore.reason}`);
    await recordRun(deps, { command: 'verify', target: item.target ?? checked.manifest?.target ?? null, id, started, error: checked.ok ? undefined : checked.error });
  }
  return { outcomes: results, unlisted };
}

type Checked = Omit<CheckResult, 'checks'> & { checks: CheckName[]; code?: number; restore?: RestoreCheck };

/**
 * Open and check one archive; a missing or unreadable one is a failed check, not a crash. With
 * `deep` (the restore checks done so far, by id and SHA-256), a backup that passes is also
 * restored into a scratch; that needs the identity of an encrypted one (exit 2 without it).
 */
export async function check(deps: AppDeps, resolved: ResolvedRef, deep?: Map<string, RestoreCheck>): Promise<Checked> {
  let archive: ArchiveReader;
  try {
    archive = await resolved.open();
  } catch (error) {
    // A missing archive is a failed check (exit 3); a storage that cannot be reached is not (exit 1).
    if (exitCodeOf(error) !== ExitCode.verification) throw error;
    return { ok: false, checks: [], error: errorMessage(error), manifest: undefined };
  }
  try {
    const plain = await plainArchive(deps, archive, resolved.sidecar, { required: deep !== undefined, what: resolved.sidecar?.id ?? resolved.name });
    const checked = await checkArchive(archive, resolved.sidecar, { entries: true, onBytes: (n) => deps.progress.bytes(n), decrypted: plain === archive ? undefined : plain });
    if (!deep || !checked.ok || !checked.manifest || !plain) return checked;
    deps.progress.stop();
    const key = `${checked.manifest.id}\0${resolved.sidecar?.archive.sha256 ?? resolved.name}`;
    const restore = deep.get(key) ?? (await restoreCheck(deps, plain, checked.manifest));
    deep.set(key, restore);
    if (restore.status === 'skipped') return { ...checked, restore };
    if (restore.status === 'ok') return { ...checked, checks: [...checked.checks, 'restore'], restore };
    return { ...checked, ok: false, error: restore.error, code: restore.code, restore };
  } catch (error) {
    // A wrong identity (exit 2) or a damaged header (exit 3) is this backup's result, not the run's end.
    const code = exitCodeOf(error);
    if (code !== ExitCode.verification && code !== ExitCode.usage) throw error;
    return { ok: false, checks: [], error: errorMessage(error), manifest: undefined, code };
  } finally {
    await archive.close();
  }
}
