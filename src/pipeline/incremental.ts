/**
 * The file side of differential backups. A differential backup stores only the files that changed
 * since its full backup (its base) and lists every other file of the set with `"base": "<id>"`,
 * the size, mode, mtime and SHA-256 the base recorded for it. A file counts as unchanged when its
 * size, mtime (to the millisecond, as manifests keep it) and mode are the base's; with `content`,
 * its SHA-256 must match as well, which reads the file. Symlinks are always stored (they are a
 * few bytes, and a base entry never stands in for a symlink).
 *
 * Restore's `--delete-extra` also lives here: what a folder holds that a file set does not.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { EntryRecord, FileSet } from '../core/manifest.js';
import type { FileEntryRecord } from './files.js';
import { hashFile } from './hash.js';

export type CompareMode = 'metadata' | 'content';

export interface BaseFile {
  size: number;
  sha256: string;
  mode: number;
  mtime: string;
}

/** A full backup's files, by entry path (`files/<n>/<rel>`), for planning a differential one. */
export interface BaseIndex {
  id: string;
  compare: CompareMode;
  files: Map<string, BaseFile>;
}

/** Linux reports 0777 for every symlink: such a base entry may be one, and is never reused for a file. */
const SYMLINK_MODE = 0o777;

/** The index of a full backup's manifest entries (its file entries; `db/` ones are ignored). */
export function baseIndex(id: string, entries: readonly EntryRecord[], compare: CompareMode): BaseIndex {
  const files = new Map<string, BaseFile>();
  for (const entry of entries as readonly Partial<FileEntryRecord>[]) {
    if (!entry.path?.startsWith('files/') || entry.base !== undefined) continue;
    if (typeof entry.mode !== 'number' || typeof entry.mtime !== 'string') continue;
    files.set(entry.path, { size: entry.size!, sha256: entry.sha256!, mode: entry.mode, mtime: entry.mtime });
  }
  return { id, compare, files };
}

/**
 * The entry for the regular file `file` (stat `st`) at entry path `name` when the base holds it
 * unchanged; undefined when it must be stored.
 */
export async function unchangedEntry(
  index: BaseIndex,
  name: string,
  file: string,
  st: { size: number | bigint; mtime: Date; mode: number | bigint },
): Promise<FileEntryRecord | undefined> {
  const known = index.files.get(name);
  if (!known || known.mode === SYMLINK_MODE) return undefined;
  const mode = Number(st.mode) & 0o7777;
  if (known.size !== Number(st.size) || known.mtime !== st.mtime.toISOString() || known.mode !== mode) return undefined;
  if (index.compare === 'content' && (await hashFile(file)).sha256 !== known.sha256) return undefined;
  return { path: name, size: known.size, sha256: known.sha256, mode: known.mode, mtime: known.mtime, base: index.id };
}

/** How much of a differential backup's file data its own archive holds, and how much its base. */
export function differentialStats(entries: readonly EntryRecord[]): { stored: number; fromBase: number } {
  let stored = 0;
  let fromBase = 0;
  for (const entry of entries) {
    if (!entry.path.startsWith('files/')) continue;
    if (entry.base === undefined) stored++;
    else fromBase++;
  }
  return { stored, fromBase };
}

export interface Extra {
  /** Relative to the folder. */
  path: string;
  /** A folder: everything in it is extra too. */
  dir: boolean;
  /** Files and symlinks it holds (1 for a file). */
  files: number;
}

/**
 * What `dest` holds that a folder file set does not: files and symlinks it does not list, folders
 * it has no entry under, and anything whose kind differs (a folder where the set has a file). Not
 * followed into symlinks; a folder that is extra is reported once, with the files inside it.
 */
export async function findExtras(dest: string, fileSet: FileSet, entries: readonly EntryRecord[], dirs: Iterable<string>): Promise<Extra[]> {
  if (fileSet.type !== 'dir') return [];
  const prefix = `files/${fileSet.index}/`;
  const files = new Set<string>();
  const folders = new Set<string>();
  for (const dir of dirs) if (dir.startsWith(prefix)) folders.add(dir.slice(prefix.length).replace(/\/$/, ''));
  for (const entry of entries) {
    if (!entry.path.startsWith(prefix)) continue;
    const rel = entry.path.slice(prefix.length);
    files.add(rel);
    for (let parent = path.posix.dirname(rel); parent !== '.'; parent = path.posix.dirname(parent)) folders.add(parent);
  }
  const extras: Extra[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      const relName = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, name);
      const st = await lstat(full);
      if (st.isDirectory()) {
        if (folders.has(relName)) await walk(full, relName);
        else extras.push({ path: relName, dir: true, files: await countFiles(full) });
      } else if (!files.has(relName)) {
        extras.push({ path: relName, dir: false, files: 1 });
      }
    }
  };
  await walk(dest, '');
  return extras;
}

async function countFiles(dir: string): Promise<number> {
  let count = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    count += entry.isDirectory() ? await countFiles(path.join(dir, entry.name)) : 1;
  }
  return count;
}

export async function removeExtras(dest: string, extras: readonly Extra[]): Promise<void> {
  for (const extra of extras) await rm(path.join(dest, extra.path), { recursive: true, force: true });
}
