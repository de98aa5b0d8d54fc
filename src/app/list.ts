/** list: backups newest first, each once with the storages that hold it, and stats over every match. */
import type { BackupRecord } from '../core/manifest.js';
import { readCatalog, recordOf } from './catalog.js';
import type { AppDeps } from './deps.js';
import { selectTargets } from './deps.js';

export interface ListResult {
  backups: BackupRecord[];
  stats: { count: number; totalBytes: number; oldest: string | null; newest: string | null };
  /** Storages that could not be listed. */
  failures: { storage: string; error: string }[];
}

export async function listBackups(deps: AppDeps, targets: string[], options: { limit: number | undefined }): Promise<ListResult> {
  const wanted = targets.length > 0 ? new Set(selectTargets(deps, targets).map((t) => t.name)) : undefined;
  const catalog = await readCatalog(deps);
  const records = catalog.backups.filter((b) => !wanted || wanted.has(b.sidecar.target)).map(recordOf);
  return {
    backups: options.limit === undefined ? records : records.slice(0, options.limit),
    stats: {
      count: records.length,
      totalBytes: records.reduce((sum, r) => sum + r.size, 0),
      oldest: records.at(-1)?.createdAt ?? null,
      newest: records[0]?.createdAt ?? null,
    },
    failures: catalog.failures,
  };
}
