/**
 * Temporary files of a run: `.<id>.<name>.<pid>.partial` in a local folder. The pid lets a later
 * run of the same target tell a dead run's leftovers from a live run's work in progress.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BACKUP_ID } from '../core/ids.js';
import { isProcessAlive } from './process.js';

const PARTIAL = /^\.([^.]+)\.(.+)\.(\d+)\.partial$/;

/**
 * A dead run's commit marker or temporary sidecar (being written, or moved aside by a delete) means
 * the backup's archive never got its sidecar, or was losing it: without a sidecar beside it, that
 * archive is a leftover too.
 */
const UNCOMMITTED = new Set(['commit', 'json']);

export function partialPath(root: string, id: string, name: string): string {
  return path.join(root, `.${id}.${name}.${process.pid}.partial`);
}

/** Remove the partial files of `target` in `root` left by runs that are no longer alive. */
export async function removePartials(root: string, target: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = PARTIAL.exec(name);
    if (!match) continue;
    const idMatch = BACKUP_ID.exec(match[1]!);
    // A driver's scratch for a target carries the target's own name where a backup id would be.
    const owner = idMatch ? idMatch[1] : match[1];
    if (owner !== target) continue;
    const pid = Number(match[3]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    if (idMatch && UNCOMMITTED.has(match[2]!) && !existsSync(path.join(root, `${match[1]}.json`))) {
      for (const archive of [`${match[1]}.zip`, `${match[1]}.zip.age`]) {
        if (!existsSync(path.join(root, archive))) continue;
        await rm(path.join(root, archive), { force: true });
        removed.push(archive);
      }
    }
    await rm(path.join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
