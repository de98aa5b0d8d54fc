/**
 * Resolving a ref (contract: "A ref is a backup id, `latest`, or a path to an archive file").
 * `latest` is the newest backup of the target that is not a pre-restore snapshot.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError, VerificationError } from '../core/errors.js';
import { isPathRef } from '../core/ids.js';
import { type Sidecar, PRE_RESTORE_TAG, newestFirst } from '../core/manifest.js';
import { readSidecarFile } from '../storage/local.js';
import type { AppDeps } from './deps.js';

export interface ResolvedRef {
  /** The archive file. */
  file: string;
  /** Its sidecar; undefined for an archive given by path with no sidecar beside it. */
  sidecar: Sidecar | undefined;
  byPath: boolean;
}

export async function resolveRef(deps: AppDeps, ref: string, target: string | undefined): Promise<ResolvedRef> {
  if (isPathRef(ref)) {
    const file = path.resolve(ref);
    if (!existsSync(file)) throw new VerificationError(`archive ${file} does not exist`);
    const sidecarFile = file.replace(/\.zip$/, '') + '.json';
    const sidecar = sidecarFile !== file ? await readSidecarFile(sidecarFile).catch(() => undefined) : undefined;
    return { file, sidecar, byPath: true };
  }
  if (ref === 'latest') {
    if (!target) throw new UsageError('"latest" needs a target', { hint: 'Name the target, or give a backup id.' });
    const all = await deps.storage.listSidecars();
    const newest = all.filter((s) => s.target === target && !s.tags.includes(PRE_RESTORE_TAG)).sort(newestFirst)[0];
    if (!newest) throw new UsageError(`no backup of ${target} in ${deps.storage.root}`, { hint: `Make one with: backupkit backup ${target}` });
    return { file: deps.storage.archivePath(newest.id), sidecar: newest, byPath: false };
  }
  const sidecar = await deps.storage.readSidecar(ref);
  if (!sidecar) {
    if (existsSync(deps.storage.archivePath(ref))) {
      throw new VerificationError(`backup ${ref} has an archive but no sidecar: it is incomplete`, {
        hint: `Give the archive by path to inspect it: ${deps.storage.archivePath(ref)}`,
      });
    }
    if (deps.config.targets.has(ref)) {
      // A target's name where a backup id belongs: `verify app` for `verify --target app`, say.
      throw new UsageError(`no backup ${ref} in ${deps.storage.root}: ${ref} is a target, not a backup id`, {
        hint: `See its backups with: backupkit list ${ref}. Its newest is "latest" (backupkit restore ${ref} latest); verify checks them all with --target ${ref}.`,
      });
    }
    throw new UsageError(`no backup ${ref} in ${deps.storage.root}`, { hint: 'See the ids with: backupkit list' });
  }
  return { file: deps.storage.archivePath(ref), sidecar, byPath: false };
}
