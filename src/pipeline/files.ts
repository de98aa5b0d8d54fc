/**
 * A target's `files` entries: stored under `files/<n>/` with their relative paths, modes and
 * mtimes, and put back from there. Restore refuses any entry that would land outside its
 * destination: `..`, an absolute path, or a symlink pointing outside.
 */
import { lstat, mkdir, readdir, readlink, realpath, rename, rm, symlink, utimes, chmod, lstat as lstatP } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import type { Logger } from '../core/driver.js';
import { OperationError, VerificationError } from '../core/errors.js';
import type { EntryRecord, FileSet } from '../core/manifest.js';
import type { ZipWriter } from './zipwriter.js';
import type { ZipEntryInfo, ZipReader } from './zipreader.js';
import { HashCounter } from './hash.js';
import { type BaseIndex, unchangedEntry } from './incremental.js';
import { isProcessAlive } from '../storage/process.js';

export interface FileEntryRecord extends EntryRecord {
  mode: number;
  mtime: string;
}

export function fileSetPrefix(index: number): string {
  return `files/${index}/`;
}

/**
 * Store one `files` entry (a folder or a single file) under `files/<index>/`. With `base` (a
 * differential backup), files the base holds unchanged are listed with `base` and not stored.
 */
export async function addFileSet(
  writer: ZipWriter,
  index: number,
  source: string,
  log: Logger,
  base?: BaseIndex,
): Promise<{ fileSet: FileSet; entries: FileEntryRecord[] }> {
  const prefix = fileSetPrefix(index);
  const entries: FileEntryRecord[] = [];
  let stats;
  try {
    stats = await lstat(source);
  } catch {
    throw new OperationError(`files[${index}]: ${source} does not exist`, {
      hint: 'Create it, or remove it from the target\'s "files" list.',
    });
  }
  const addFile = async (file: string, name: string, st: Awaited<ReturnType<typeof lstat>>) => {
    const unchanged = base && (await unchangedEntry(base, name, file, st));
    if (unchanged) {
      entries.push(unchanged);
      return;
    }
    const record = await writer.addFile(name, file, {
      compressed: false,
      mode: Number(st.mode) & 0o7777,
      date: st.mtime,
    });
    entries.push({ ...record, mode: Number(st.mode) & 0o7777, mtime: st.mtime.toISOString() });
  };

  if (stats.isFile()) {
    await addFile(source, prefix + path.basename(source), stats);
  } else if (stats.isDirectory()) {
    const root = await realpath(source);
    const walk = async (dir: string, rel: string): Promise<void> => {
      const names = (await readdir(dir)).sort();
      // A folder's entries are stat-ed at once: one after the other, a differential backup of many
      // small files spent most of its time waiting on lstat.
      const stats = await Promise.all(names.map((name) => lstat(path.join(dir, name))));
      for (const [i, name] of names.entries()) {
        const full = path.join(dir, name);
        const relName = rel ? `${rel}/${name}` : name;
        const st = stats[i]!;
        if (st.isDirectory()) {
          await writer.addDirectory(prefix + relName + '/', Number(st.mode) & 0o7777, st.mtime);
          await walk(full, relName);
        } else if (st.isFile()) {
          await addFile(full, prefix + relName, st);
        } else if (st.isSymbolicLink()) {
          const target = await readlink(full);
          if (!staysInside(root, path.join(root, rel), target)) {
            log.warn({ path: full, target }, 'symlink points outside its folder; not stored');
            continue;
          }
          const record = await writer.addSymlink(prefix + relName, target, Number(st.mode) & 0o7777);
          entries.push({ ...record, mode: Number(st.mode) & 0o7777, mtime: st.mtime.toISOString() });
        } else {
          log.warn({ path: full }, 'not a regular file, folder or symlink; not stored');
        }
      }
    };
    await walk(source, '');
  } else {
    throw new OperationError(`files[${index}]: ${source} is neither a file nor a folder`);
  }
  const bytes = entries.reduce((sum, e) => sum + e.size, 0);
  return {
    fileSet: { index, path: source, type: stats.isFile() ? 'file' : 'dir', count: entries.length, bytes },
    entries,
  };
}

/** Would a symlink at `linkDir` with this target resolve inside `root`? */
function staysInside(root: string, linkDir: string, target: string): boolean {
  if (path.isAbsolute(target)) return isInside(root, path.resolve(target));
  return isInside(root, path.resolve(linkDir, target));
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Problems with the entry names and symlinks under `files/`: anything that would land outside
 * its destination. Checked by verify, so restore refuses before it writes anything.
 */
export function unsafeFileEntries(entries: Iterable<ZipEntryInfo>, symlinkTargets: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const entry of entries) {
    const name = entry.name;
    if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.includes('\\')) {
      problems.push(`${name}: absolute or non-portable path`);
      continue;
    }
    if (name.split('/').some((part) => part === '..')) {
      problems.push(`${name}: contains ".."`);
      continue;
    }
    if (!name.startsWith('files/')) continue;
    const match = /^files\/(\d+)\/(.*)$/.exec(name);
    if (!match) {
      problems.push(`${name}: not under files/<n>/`);
      continue;
    }
    const target = symlinkTargets.get(name);
    if (entry.type === 'symlink' && target !== undefined) {
      const rel = match[2]!.replace(/\/$/, '');
      const root = '/r';
      if (!staysInside(root, path.posix.dirname(path.posix.join(root, rel)), target)) {
        problems.push(`${name}: symlink to ${target} points outside its folder`);
      }
    }
  }
  return problems;
}

/**
 * Put one file set back at `dest`: files are written beside their final name and renamed into
 * place; modes and mtimes come from the manifest. Files present at `dest` but not in the archive
 * are left alone; copies a killed restore left beside the files it wrote are removed. Entries with
 * `base` (a differential backup) are read from `base`, the base's archive, where each must be a
 * regular file.
 */
export async function restoreFileSet(
  reader: ZipReader,
  fileSet: FileSet,
  entries: FileEntryRecord[],
  dest: string,
  onBytes?: (n: number) => void,
  base?: ZipReader,
): Promise<number> {
  const prefix = fileSetPrefix(fileSet.index);
  const sourceOf = (entry: FileEntryRecord): ZipReader => {
    if (entry.base === undefined) return reader;
    if (!base) throw new VerificationError(`${entry.path}: held by the base backup ${entry.base}, which is not open`);
    const info = base.entries.get(entry.path);
    if (info?.type !== 'file') throw new VerificationError(`${entry.path}: the base backup ${entry.base} holds no such file`);
    return base;
  };
  if (fileSet.type === 'file') {
    const entry = entries.find((e) => e.path.startsWith(prefix));
    if (!entry) return 0;
    await mkdir(path.dirname(dest), { recursive: true });
    await writeEntry(sourceOf(entry), entry, dest, onBytes);
    await removeDeadCopies(path.dirname(dest));
    return 1;
  }
  await mkdir(dest, { recursive: true });
  const root = await realpath(dest);
  const dirs: { full: string; info: ZipEntryInfo }[] = [];
  for (const info of reader.entries.values()) {
    if (!info.name.startsWith(prefix) || info.type !== 'directory') continue;
    const full = safeJoin(root, info.name.slice(prefix.length));
    await mkdir(full, { recursive: true });
    dirs.push({ full, info });
  }
  // Each folder is made and checked once: it must not be a symlink leading outside `dest`.
  const folders = new Map<string, Promise<void>>();
  const folderOf = (entry: FileEntryRecord, full: string): Promise<void> => {
    const dir = path.dirname(full);
    let ready = folders.get(dir);
    if (!ready) {
      ready = (async () => {
        await mkdir(dir, { recursive: true });
        if (!isInside(root, await realpath(dir))) throw new VerificationError(`${entry.path}: its folder at ${dest} is a symlink leading outside; refusing to write there`);
      })();
      folders.set(dir, ready);
    }
    return ready;
  };
  const mine = entries.filter((e) => e.path.startsWith(prefix));
  const isLink = (entry: FileEntryRecord) => entry.base === undefined && reader.entries.get(entry.path)?.type === 'symlink';
  // Files first, several at once (a restore of many small files waits on the disk, not the CPU);
  // then symlinks, one by one, so none is in place while a file is written below it.
  await inParallel(mine.filter((e) => !isLink(e)), RESTORE_CONCURRENCY, async (entry) => {
    const full = safeJoin(root, entry.path.slice(prefix.length));
    await folderOf(entry, full);
    await writeEntry(sourceOf(entry), entry, full, onBytes);
  });
  for (const entry of mine.filter(isLink)) {
    const full = safeJoin(root, entry.path.slice(prefix.length));
    await folderOf(entry, full);
    const target = await reader.readText(entry.path);
    if (!staysInside(root, path.dirname(full), target)) {
      throw new VerificationError(`${entry.path}: symlink to ${target} points outside ${dest}`);
    }
    await rm(full, { force: true });
    await symlink(target, full);
  }
  for (const folder of new Set(entries.filter((e) => e.path.startsWith(prefix)).map((e) => path.dirname(safeJoin(root, e.path.slice(prefix.length)))))) {
    await removeDeadCopies(folder);
  }
  // Folders last, deepest first: writing files into them changed their mtimes.
  for (const { full, info } of dirs.sort((a, b) => b.full.length - a.full.length)) {
    if (info.mode !== undefined) await chmod(full, info.mode);
    await utimes(full, info.modified, info.modified);
  }
  return mine.length;
}

/** Files written at once by a restore. */
const RESTORE_CONCURRENCY = 8;

/** Run `task` on every item, at most `limit` at a time; the first failure stops the rest and is thrown once all have settled. */
async function inParallel<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** `.<name>.backupkit-<pid>.tmp`: a file being restored, beside its final name. */
const RESTORE_COPY = /^\..+\.backupkit-(\d+)\.tmp$/;

/** Remove the copies in `folder` that restores no longer running left behind. */
async function removeDeadCopies(folder: string): Promise<void> {
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    const pid = Number(RESTORE_COPY.exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !isProcessAlive(pid)) await rm(path.join(folder, name), { force: true });
  }
}

function safeJoin(root: string, rel: string): string {
  const full = path.resolve(root, rel);
  if (!isInside(root, full)) throw new VerificationError(`${rel}: would land outside ${root}; refusing`);
  return full;
}

async function writeEntry(reader: ZipReader, entry: FileEntryRecord, dest: string, onBytes?: (n: number) => void): Promise<void> {
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.backupkit-${process.pid}.tmp`);
  try {
    const counter = new HashCounter(onBytes);
    await pipeline(await reader.open(entry.path), counter, createWriteStream(temp, { mode: 0o600 }));
    const sha256 = counter.digest();
    if (sha256 !== entry.sha256) throw new VerificationError(`${entry.path}: checksum mismatch while restoring`);
    await chmod(temp, entry.mode);
    const mtime = new Date(entry.mtime);
    await utimes(temp, mtime, mtime);
    const existing = await lstatP(dest).catch(() => undefined);
    if (existing?.isDirectory()) throw new OperationError(`${dest} is a folder; cannot restore a file over it`);
    await rename(temp, dest);
  } finally {
    await rm(temp, { force: true });
  }
}
