/**
 * copy: put into one storage the backups it lacks from another (restic's `copy`). Archive first,
 * then sidecar, as a backup commits; the bytes are hashed on the way and checked against the
 * sidecar's size and SHA-256 before the copy is committed, so an interrupted or damaged copy
 * leaves nothing listed in the destination. Nothing is re-dumped. A differential backup's base
 * goes along when the destination lacks it, before the backups that need it; if it cannot be
 * copied, neither are they.
 */
import { pipeline } from 'node:stream/promises';
import { withBases } from '../core/chain.js';
import { OperationError, UsageError, VerificationError, errorMessage, exitCodeOf, ExitCode, type ExitCodeValue } from '../core/errors.js';
import { type Sidecar, newestFirst } from '../core/manifest.js';
import type { Storage } from '../core/storage.js';
import { HashCounter } from '../pipeline/hash.js';
import { lockTarget } from './backup.js';
import { listStorage } from './catalog.js';
import { isRestorable } from '../core/manifest.js';
import { type AppDeps, beginRun, getTarget, recordRun } from './deps.js';

export interface CopyOptions {
  from: string;
  to: string;
  refs: string[];
  target: string | undefined;
}

export interface CopyResult {
  copied: { id: string; from: string; to: string; bytes: number }[];
  skipped: { id: string; reason: 'present' }[];
  failures: { id: string; error: string; code: ExitCodeValue }[];
}

export async function copyBackups(deps: AppDeps, storages: { get(name: string): Storage }, options: CopyOptions): Promise<CopyResult> {
  const from = storages.get(options.from);
  const to = storages.get(options.to);
  if (from === to) throw new UsageError(`--from and --to name the same storage (${from.name})`);
  const source = (await listStorage(deps, from)).sidecars.filter((s) => !options.target || s.target === options.target).sort(newestFirst);
  const picked = options.refs.length === 0 ? source : options.refs.map((ref) => pick(deps, source, ref, from, options.target));
  const present = new Set((await to.list()).sidecars.map((s) => s.id));
  const { order: wanted, missing } = withBases(picked, source, present);
  for (const m of missing) deps.log.warn({ id: m.id, base: m.base }, `${m.id} needs its base ${m.base}, which neither ${from.name} nor ${to.name} holds: a restore from ${to.name} reads it from another storage`);
  const result: CopyResult = { copied: [], skipped: [], failures: [] };
  const failed = new Set<string>();
  await to.ensure();
  for (const sidecar of wanted) {
    if (deps.signal.aborted) throw deps.signal.reason;
    if (present.has(sidecar.id)) {
      result.skipped.push({ id: sidecar.id, reason: 'present' });
      continue;
    }
    const started = await beginRun(deps, 'copy', sidecar.target);
    try {
      if (sidecar.base !== undefined && failed.has(sidecar.base)) throw new OperationError(`its base ${sidecar.base} could not be copied to ${to.name}; not copied`);
      const lock = await lockTarget(deps, { name: sidecar.target }, [to], 'copy');
      try {
        await copyOne(deps, sidecar, from, to);
      } finally {
        await lock.release();
      }
      result.copied.push({ id: sidecar.id, from: from.name, to: to.name, bytes: sidecar.archive.size });
      deps.log.info({ id: sidecar.id }, `copied ${sidecar.id} from ${from.name} to ${to.name}`);
      await recordRun(deps, { command: 'copy', target: sidecar.target, id: sidecar.id, started, error: undefined });
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      failed.add(sidecar.id);
      deps.log.error({ id: sidecar.id }, `copy of ${sidecar.id} failed: ${errorMessage(error)}`);
      result.failures.push({ id: sidecar.id, error: errorMessage(error), code: exitCodeOf(error) });
      await recordRun(deps, { command: 'copy', target: sidecar.target, id: sidecar.id, started, error });
    }
  }
  return result;
}

function pick(deps: AppDeps, source: Sidecar[], ref: string, from: Storage, target: string | undefined): Sidecar {
  if (ref === 'latest') {
    if (!target) throw new UsageError('"latest" needs --target');
    const config = getTarget(deps, target);
    const newest = source.find((s) => isRestorable(config, s));
    if (!newest) throw new UsageError(`no complete backup of ${target} in storage ${from.name}`);
    return newest;
  }
  const found = source.find((s) => s.id === ref);
  if (!found) throw new UsageError(`no backup ${ref} in storage ${from.name}`, { hint: `See its backups with: backupkit list --storage ${from.name}` });
  return found;
}

async function copyOne(deps: AppDeps, sidecar: Sidecar, from: Storage, to: Storage): Promise<void> {
  const { file, size, sha256 } = sidecar.archive;
  const archive = await from.openArchive(sidecar.id, file);
  const upload = to.createArchive(sidecar.id, file, {});
  let committed = false;
  try {
    if (archive.size !== size) throw new VerificationError(`${sidecar.id} in ${from.name}: the archive is ${archive.size} bytes, its sidecar says ${size}; not copied`);
    const hash = new HashCounter((n) => deps.progress.bytes(n));
    deps.progress.start(`copying ${sidecar.id} to ${to.name}`, size);
    await pipeline(archive.stream(0, size), hash, upload.stream, { signal: deps.signal });
    const digest = hash.digest();
    if (hash.bytes !== size || digest !== sha256) {
      throw new VerificationError(`${sidecar.id} in ${from.name}: read ${hash.bytes} bytes with SHA-256 ${digest}, its sidecar says ${size} bytes, ${sha256}; not copied`);
    }
    await upload.commit();
    committed = true;
    await to.writeSidecar(sidecar);
  } catch (error) {
    // Once the archive is committed, the sidecar may have landed before the error: the storage
    // removes it as a backup, sidecar out of the listing first.
    if (committed) await to.remove(sidecar.id, file).catch(() => undefined);
    await upload.abort().catch(() => undefined);
    throw deps.signal.aborted ? deps.signal.reason : error;
  } finally {
    deps.progress.stop();
    await archive.close();
  }
}
