/**
 * The storage folder (contract: "Storage layout and archive"):
 *   <id>.zip, <id>.json (sidecar), history.jsonl, .locks/<target>.lock
 * An archive is written under a hidden temporary name, flushed, renamed; its sidecar comes last,
 * so a backup exists only once both are in place. Temporary names carry the writer's pid, which
 * lets a later run remove what a dead run left behind.
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BACKUP_ID, archiveFileName, sidecarFileName } from '../core/ids.js';
import { type Sidecar, isSidecar } from '../core/manifest.js';
import { ArchiveFile } from './archivefile.js';
import { isProcessAlive } from './process.js';

const PARTIAL = /^\.([^.]+)\.(.+)\.(\d+)\.partial$/;

export interface HistoryEntry {
  time: string;
  command: string;
  target: string | null;
  id: string | null;
  ok: boolean;
  durationMs: number;
  error: string | null;
}

export class LocalStorage {
  constructor(readonly root: string) {}

  async ensure(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  archivePath(id: string): string {
    return path.join(this.root, archiveFileName(id));
  }

  sidecarPath(id: string): string {
    return path.join(this.root, sidecarFileName(id));
  }

  /** Is the id used by an archive, a sidecar, or a run writing one now? */
  isTaken(id: string): boolean {
    return existsSync(this.archivePath(id)) || existsSync(this.sidecarPath(id));
  }

  /** Every sidecar in the storage; unreadable or foreign JSON files are reported, not fatal. */
  async listSidecars(onSkip?: (file: string, reason: string) => void): Promise<Sidecar[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const candidates = names.filter((n) => n.endsWith('.json') && !n.startsWith('.') && BACKUP_ID.test(n.slice(0, -5)));
    // Synchronous reads: for thousands of small files they cost a fraction of the async path's
    // open/stat/read/close round trips, and a listing has nothing else to do meanwhile.
    const out: Sidecar[] = [];
    for (const name of candidates) {
      try {
        const value: unknown = JSON.parse(readFileSync(path.join(this.root, name), 'utf8'));
        if (isSidecar(value)) out.push(value);
        else onSkip?.(name, 'not a backupkit sidecar');
      } catch (error) {
        onSkip?.(name, (error as Error).message);
      }
    }
    return out;
  }

  async readSidecar(id: string): Promise<Sidecar | undefined> {
    return readSidecarFile(this.sidecarPath(id));
  }

  /** A temporary path for `id`, removed by a later run if this one dies. */
  tempPath(id: string, name: string): string {
    return path.join(this.root, `.${id}.${name}.${process.pid}.partial`);
  }

  /**
   * A write stream for a new archive under its temporary name; it finishes once on disk. With
   * `hashInWorker`, the stream hashes the file as it is written (`stream.sha256()`, once finished).
   */
  createArchive(id: string, options: { hashInWorker?: boolean } = {}): { tempPath: string; stream: ArchiveFile } {
    const tempPath = this.tempPath(id, 'zip');
    return { tempPath, stream: new ArchiveFile(tempPath, options) };
  }

  /** Give the finished (and flushed) archive its final name. */
  async commitArchive(tempPath: string, id: string): Promise<void> {
    await rename(tempPath, this.archivePath(id));
    await fsyncPath(this.root);
  }

  /** The sidecar, written last: from this moment the backup exists. */
  async writeSidecar(sidecar: Sidecar): Promise<void> {
    const tempPath = this.tempPath(sidecar.id, 'json');
    await writeFile(tempPath, `${JSON.stringify(sidecar, null, 2)}\n`, { mode: 0o600 });
    await fsyncPath(tempPath);
    await rename(tempPath, this.sidecarPath(sidecar.id));
    await fsyncPath(this.root);
  }

  /** Delete a backup: the archive first, then its sidecar, so no listed backup lacks its archive. */
  async remove(id: string): Promise<void> {
    await rm(this.archivePath(id), { force: true });
    await rm(this.sidecarPath(id), { force: true });
  }

  /** Remove the partial files of `target` left by runs that are no longer alive. */
  async removeLeftovers(target: string): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return removed;
    }
    for (const name of names) {
      const match = PARTIAL.exec(name);
      if (!match) continue;
      const idMatch = BACKUP_ID.exec(match[1]!);
      if (!idMatch || idMatch[1] !== target) continue;
      const pid = Number(match[3]);
      if (pid !== process.pid && isProcessAlive(pid)) continue;
      await rm(path.join(this.root, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    await this.ensure();
    await appendFile(path.join(this.root, 'history.jsonl'), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  }

  async readHistory(): Promise<HistoryEntry[]> {
    let text: string;
    try {
      text = await readFile(path.join(this.root, 'history.jsonl'), 'utf8');
    } catch {
      return [];
    }
    const out: HistoryEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as HistoryEntry);
      } catch {
        // a line cut short by a crash: skip it
      }
    }
    return out;
  }
}

export async function readSidecarFile(file: string): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const value: unknown = JSON.parse(text);
  return isSidecar(value) ? value : undefined;
}

async function fsyncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
