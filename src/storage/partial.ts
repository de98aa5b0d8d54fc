/**
 * Temporary files of a run: `.<id>.<name>.<pid>.partial` in a local folder. The pid lets a later
 * run of the same target tell a dead run's leftovers from a live run's work in progress.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BACKUP_ID } from '../core/ids.js';
import { isProcessAlive } from './process.js';

const PARTIAL = /^\.([^.]+)\.(.+)\.(\d+)\.partial$/;

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
    await rm(path.join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
