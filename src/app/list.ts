/** list: backups newest first, with stats over every backup that matched. */
import { type BackupRecord, newestFirst, toRecord } from '../core/manifest.js';
import type { AppDeps } from './deps.js';
import { selectTargets } from './deps.js';

export interface ListResult {
  backups: BackupRecord[];
  stats: { count: number; totalBytes: number; oldest: string | null; newest: string | null };
}

export async function listBackups(deps: AppDeps, targets: string[], options: { limit: number | undefined }): Promise<ListResult> {
  const wanted = targets.length > 0 ? new Set(selectTargets(deps, targets).map((t) => t.name)) : undefined;
  const sidecars = await deps.storage.listSidecars((file, reason) => deps.log.warn({ file }, `skipping ${file}: ${reason}`));
  const matched = sidecars.filter((s) => !wanted || wanted.has(s.target)).sort(newestFirst);
  const records = matched.map(toRecord);
  return {
    backups: options.limit === undefined ? records : records.slice(0, options.limit),
    stats: {
      count: records.length,
      totalBytes: records.reduce((sum, r) => sum + r.size, 0),
      oldest: records.at(-1)?.createdAt ?? null,
      newest: records[0]?.createdAt ?? null,
    },
  };
}
