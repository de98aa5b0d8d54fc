/** verify: check archives (every backup in the storages when no refs are given). */
import { ExitCode, UsageError, errorMessage, exitCodeOf } from '../core/errors.js';
import type { ArchiveReader } from '../core/storage.js';
import { checkArchive, type CheckName, type CheckResult } from '../pipeline/verify.js';
import { readCatalog } from './catalog.js';
import { plainArchive } from './keys.js';
import { type AppDeps, beginRun, recordRun } from './deps.js';
import { MissingBackupError, type ResolvedRef, resolveRef } from './refs.js';

export interface VerifyResult {
  id: string;
  ok: boolean;
  checks: CheckName[];
  error: string | null;
  /** The storage whose copy was checked (absent for an archive given by path). */
  storage?: string;
}

/** A result and the exit code its failure calls for (3, or 2 when the keys given do not fit). */
export interface VerifyOutcome extends VerifyResult {
  code: number;
}

/** The outcomes, and the storages that could not be listed (verify of everything then fails, exit 1). */
export async function verifyBackups(
  deps: AppDeps,
  refs: string[],
  options: { target: string | undefined },
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
  for (const item of items) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = await beginRun(deps, 'verify', item.target);
    const storage = item.resolved.storages[0]?.name;
    deps.progress.start(`verifying ${item.id}${storage && deps.storages.all.length > 1 ? ` in ${storage}` : ''}`);
    const checked = await check(deps, item.resolved).finally(() => deps.progress.stop());
    const id = checked.manifest?.id ?? item.id;
    results.push({ id, ok: checked.ok, checks: checked.checks, error: checked.error, ...(storage ? { storage } : {}), code: checked.ok ? ExitCode.ok : (checked.code ?? ExitCode.verification) });
    if (!checked.ok) deps.log.error({ id, storage }, `${id}${storage ? ` (${storage})` : ''}: ${checked.error}`);
    await recordRun(deps, { command: 'verify', target: item.target ?? checked.manifest?.target ?? null, id, started, error: checked.ok ? undefined : checked.error });
  }
  return { outcomes: results, unlisted };
}

/** Open and check one archive; a missing or unreadable one is a failed check, not a crash. */
export async function check(deps: AppDeps, resolved: ResolvedRef): Promise<CheckResult & { code?: number }> {
  let archive: ArchiveReader;
  try {
    archive = await resolved.open();
  } catch (error) {
    // A missing archive is a failed check (exit 3); a storage that cannot be reached is not (exit 1).
    if (exitCodeOf(error) !== ExitCode.verification) throw error;
    return { ok: false, checks: [], error: errorMessage(error), manifest: undefined };
  }
  try {
    const plain = await plainArchive(deps, archive, resolved.sidecar, { required: false, what: resolved.sidecar?.id ?? resolved.name });
    return await checkArchive(archive, resolved.sidecar, { entries: true, onBytes: (n) => deps.progress.bytes(n), decrypted: plain === archive ? undefined : plain });
  } catch (error) {
    // A wrong identity (exit 2) or a damaged header (exit 3) is this backup's result, not the run's end.
    const code = exitCodeOf(error);
    if (code !== ExitCode.verification && code !== ExitCode.usage) throw error;
    return { ok: false, checks: [], error: errorMessage(error), manifest: undefined, code };
  } finally {
    await archive.close();
  }
}
