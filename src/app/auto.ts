/**
 * auto: restore-if-empty, for container start-up (`backupkit auto && exec node server.js`).
 * For each target: if its database holds data, do nothing ("not-empty"). If it is empty, restore
 * the newest complete backup (as `latest` means it) that passes verification, skipping damaged ones with the reason logged; no
 * confirmation and no snapshot, since there is nothing to lose. Running it again finds the
 * database full and does nothing.
 */
import type { TargetConfig } from '../config/load.js';
import { VerificationError, errorMessage, exitCodeOf, ExitCode, type ExitCodeValue } from '../core/errors.js';
import { checkArchive } from '../pipeline/verify.js';
import { lockTarget } from './backup.js';
import { openBase } from './chain.js';
import { readCatalog } from './catalog.js';
import { isRestorable } from '../core/manifest.js';
import { type AppDeps, beginRun, driverContext, recordRun, selectTargets } from './deps.js';
import { plainArchive } from './keys.js';
import { applyRestore } from './restore.js';

export interface AutoResult {
  target: string;
  action: 'restored' | 'not-empty' | 'no-backup';
  id: string | null;
}

export interface AutoOutcome {
  results: AutoResult[];
  failures: { target: string; error: string; code: ExitCodeValue }[];
}

export async function autoRestore(deps: AppDeps, names: string[], options: { requireBackup: boolean }): Promise<AutoOutcome> {
  const outcome: AutoOutcome = { results: [], failures: [] };
  for (const target of selectTargets(deps, names)) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const started = await beginRun(deps, 'auto', target.name);
    try {
      const result = await autoTarget(deps, target);
      outcome.results.push(result);
      const error = result.action === 'no-backup' && options.requireBackup ? 'empty and no backup to restore' : undefined;
      if (error) outcome.failures.push({ target: target.name, error, code: ExitCode.failed });
      await recordRun(deps, { command: 'auto', target: target.name, id: result.id, started, error });
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      deps.log.error({ target: target.name }, `auto for ${target.name} failed: ${errorMessage(error)}`);
      outcome.failures.push({ target: target.name, error: errorMessage(error), code: exitCodeOf(error) });
      await recordRun(deps, { command: 'auto', target: target.name, id: null, started, error });
    }
  }
  return outcome;
}

async function autoTarget(deps: AppDeps, target: TargetConfig): Promise<AutoResult> {
  const lock = await lockTarget(deps, target, deps.storages.lockSetFor(target), 'auto');
  try {
    const ctx = driverContext(deps, target, deps.signal, target.name);
    if (!(await target.driver.isEmpty(ctx, target.options))) {
      deps.log.info(`${target.name}: not empty; nothing to do`);
      return { target: target.name, action: 'not-empty', id: null };
    }
    const candidates = (await readCatalog(deps)).backups.filter(({ sidecar }) => isRestorable(target, sidecar));
    // Newest first; each backup from every storage that holds it, until one copy passes.
    for (const { sidecar, storages } of candidates) {
      for (const storage of storages) {
        deps.progress.start(`${target.name}: verifying ${sidecar.id}${storages.length > 1 ? ` in ${storage.name}` : ''}`);
        const archive = await storage.openArchive(sidecar.id, sidecar.archive.file).catch((error: unknown) => {
          if (exitCodeOf(error) !== ExitCode.verification) throw error;
          deps.log.warn({ id: sidecar.id, storage: storage.name }, `${target.name}: skipping ${sidecar.id} in ${storage.name}: ${errorMessage(error)}`);
          return undefined;
        });
        if (!archive) {
          deps.progress.stop();
          continue;
        }
        try {
          const plain = (await plainArchive(deps, archive, sidecar, { required: true, what: sidecar.id, target: target.name }).catch((error: unknown) => {
            deps.progress.stop();
            if (exitCodeOf(error) !== ExitCode.verification) throw error;
            deps.log.warn({ id: sidecar.id, storage: storage.name }, `${target.name}: skipping ${sidecar.id} in ${storage.name}: ${errorMessage(error)}`);
            return undefined;
          }));
          if (!plain) continue;
          const checked = await checkArchive(archive, sidecar, { entries: true, onBytes: (n) => deps.progress.bytes(n), decrypted: plain === archive ? undefined : plain }).finally(() => deps.progress.stop());
          if (!checked.ok || !checked.manifest) {
            deps.log.warn({ id: sidecar.id, storage: storage.name }, `${target.name}: skipping ${sidecar.id} in ${storage.name}: ${checked.error}`);
            continue;
          }
          const parts = { db: true, files: checked.manifest.parts.includes('files') };
          // A differential backup whose base is missing or bad is passed over like a bad archive.
          const base = parts.files && checked.manifest.base !== undefined ? await openBase(deps, checked.manifest).catch((error: unknown) => {
            if (exitCodeOf(error) !== ExitCode.verification) throw error;
            deps.log.warn({ id: sidecar.id, base: checked.manifest!.base }, `${target.name}: skipping ${sidecar.id}: ${errorMessage(error)}`);
            return undefined;
          }) : undefined;
          if (parts.files && checked.manifest.base !== undefined && !base) break;
          try {
            deps.log.info(`${target.name}: empty; restoring ${sidecar.id} from ${storage.name}`);
            await target.driver.checkTools?.(ctx, target.options, 'restore');
            await applyRestore(deps, target, plain, checked.manifest, target.options, { only: undefined, into: undefined, units: checked.manifest.units, source: checked.manifest.source, flush: false }, parts, { base, deleteExtra: false });
          } finally {
            await base?.close();
          }
          return { target: target.name, action: 'restored', id: sidecar.id };
        } finally {
          await archive.close();
        }
      }
    }
    if (candidates.length > 0) throw new VerificationError(`${target.name}: empty, and none of its ${candidates.length} backup(s) passes verification`);
    deps.log.warn(`${target.name}: empty, and there is no backup to restore`);
    return { target: target.name, action: 'no-backup', id: null };
  } finally {
    await lock.release();
  }
}
