/**
 * A storage folder (contract: "Storage layout and archive"):
 *   <id>.zip, <id>.json (sidecar), .locks/<target>.lock
 * An archive is written under a hidden temporary name, flushed, renamed; its sidecar comes last,
 * so a backup exists only once both are in place. Temporary names carry the writer's pid, which
 * lets a later run remove what a dead run left behind: its partial files, and an archive it had
 * renamed into place but not given a sidecar yet (a commit marker says so until the sidecar is
 * there). A delete moves the sidecar aside first, so a backup leaves listings whole.
 */
import { randomBytes } from 'node:crypto';
import { type Stats, constants as fsConstants, createReadStream, readFileSync, statSync } from 'node:fs';
import { type FileHandle, access, mkdir, open, readFile, readdir, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BACKUP_ID, sidecarFileName } from '../core/ids.js';
import { OperationError, VerificationError } from '../core/errors.js';
import { formatBytes } from '../core/format.js';
import { type Sidecar, isSidecar } from '../core/manifest.js';
import type { RetentionPolicy } from '../core/retention.js';
import type { ArchiveReader, ArchiveUpload, Lock, Storage, StorageListing } from '../core/storage.js';
import { ArchiveFile } from './archivefile.js';
import { acquireLock } from './lock.js';
import { partialPath, removePartials } from './partial.js';

const ARCHIVE_NAME = /^(.+)\.zip(\.age)?$/;

export class LocalStorage implements Storage {
  readonly type = 'local' as const;

  constructor(
    readonly root: string,
    readonly name = 'local',
    readonly retention: RetentionPolicy | undefined = undefined,
  ) {}

  get location(): string {
    return this.root;
  }

  async ensure(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  async probe(): Promise<string> {
    const info = await stat(this.root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new OperationError(`cannot reach ${this.root}: ${error.code ?? error.message}`, { cause: error, hint: accessHint(this.root) });
    });
    if (!info) {
      // Not created yet: the first backup creates it, if its nearest existing folder lets it.
      let parent = path.dirname(this.root);
      while (!(await stat(parent).then((s) => s.isDirectory(), () => false)) && path.dirname(parent) !== parent) parent = path.dirname(parent);
      await access(parent, fsConstants.W_OK | fsConstants.X_OK).catch((error: NodeJS.ErrnoException) => {
        throw new OperationError(`${this.root} does not exist and cannot be created: ${parent} is not writable (${error.code ?? error.message})`, { cause: error, hint: accessHint(parent) });
      });
      return `${this.root} does not exist yet (the first backup creates it); ${await freeSpace(parent)}`;
    }
    if (!info.isDirectory()) throw new OperationError(`${this.root} is not a folder`, { hint: 'Point the storage\'s "path" at a folder.' });
    const probe = path.join(this.root, `.backupkit-probe.${process.pid}.${randomBytes(4).toString('hex')}`);
    try {
      await readdir(this.root);
      await writeFile(probe, 'backupkit probe\n', { mode: 0o600, flag: 'wx' });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new OperationError(`cannot write to ${this.root}: ${code}`, { cause: error, hint: code === 'ENOSPC' ? `Free space on the disk that holds ${this.root}.` : accessHint(this.root) });
    } finally {
      await rm(probe, { force: true });
    }
    return `${this.root}: writable, ${await freeSpace(this.root)}`;
  }

  archivePath(file: string): string {
    return path.join(this.root, path.basename(file));
  }

  sidecarPath(id: string): string {
    return path.join(this.root, sidecarFileName(id));
  }

  async list(): Promise<StorageListing> {
    const listing: StorageListing = { sidecars: [], sidecarIds: new Set(), archives: new Map(), skipped: [] };
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return listing;
      throw error;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const archive = ARCHIVE_NAME.exec(name);
      if (archive && BACKUP_ID.test(archive[1]!)) {
        let info: Stats | undefined;
        try {
          info = statSync(path.join(this.root, name));
        } catch {
          info = undefined; // removed meanwhile
        }
        if (info?.isFile()) listing.archives.set(archive[1]!, { file: name, size: info.size, modified: info.mtime });
        continue;
      }
      if (!name.endsWith('.json') || !BACKUP_ID.test(name.slice(0, -5))) continue;
      listing.sidecarIds.add(name.slice(0, -5));
      // Synchronous reads and stats: for thousands of small files they cost a fraction of the async
      // path's round trips, and a listing has nothing else to do meanwhile.
      try {
        const value: unknown = JSON.parse(readFileSync(path.join(this.root, name), 'utf8'));
        if (isSidecar(value)) listing.sidecars.push(value);
        else listing.skipped.push({ name, reason: 'not a backupkit sidecar' });
      } catch (error) {
        listing.skipped.push({ name, reason: (error as Error).message });
      }
    }
    return listing;
  }

  async readSidecar(id: string): Promise<Sidecar | undefined> {
    return readSidecarFile(this.sidecarPath(id));
  }

  async idsTaken(prefix: string): Promise<Set<string>> {
    const taken = new Set<string>();
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const id = name.replace(/\.(zip|zip\.age|json)$/, '');
      if (id !== name) taken.add(id);
    }
    return taken;
  }

  async hasArchive(_id: string, file: string): Promise<boolean> {
    return stat(this.archivePath(file)).then((s) => s.isFile(), () => false);
  }

  /** A temporary path for `id`, removed by a later run if this one dies. */
  tempPath(id: string, name: string): string {
    return partialPath(this.root, id, name);
  }

  /**
   * A new archive under its temporary name; `commit` flushes the folder after the rename. With
   * `hashInWorker`, the file is hashed as it is written, by a worker reading it back.
   */
  createArchive(id: string, file: string, options: { hashInWorker?: boolean }): ArchiveUpload {
    const temp = this.tempPath(id, 'zip');
    const marker = this.tempPath(id, 'commit');
    const stream = new ArchiveFile(temp, { ...options, describeError: (error) => this.describeError(error) });
    let committed = false;
    return {
      stream,
      ...(options.hashInWorker ? { sha256: () => stream.sha256() } : {}),
      commit: async () => {
        try {
          // Removed by writeSidecar: a run that dies before then leaves an archive its next run removes.
          await writeFile(marker, '', { mode: 0o600 });
          await rename(temp, this.archivePath(file));
          committed = true;
          await fsyncPath(this.root);
        } catch (error) {
          throw this.describeError(error as Error);
        }
      },
      // Before the sidecar, a committed archive is this upload's too (the marker goes last).
      abort: async () => {
        stream.destroy();
        await rm(temp, { force: true });
        if (committed) await rm(this.archivePath(file), { force: true });
        await rm(marker, { force: true });
      },
    };
  }

  /** The sidecar, written last: from this moment the backup exists. A write that fails leaves no temporary file. */
  async writeSidecar(sidecar: Sidecar): Promise<void> {
    const tempPath = this.tempPath(sidecar.id, 'json');
    try {
      await writeFile(tempPath, `${JSON.stringify(sidecar, null, 2)}\n`, { mode: 0o600 });
      await fsyncPath(tempPath);
      await rename(tempPath, this.sidecarPath(sidecar.id));
      await fsyncPath(this.root);
      await rm(this.tempPath(sidecar.id, 'commit'), { force: true });
    } catch (error) {
      await rm(tempPath, { force: true });
      throw this.describeError(error as Error);
    }
  }

  /**
   * A file system error met while writing here, as the operator needs it: which storage, which
   * folder, and what to do when it is full. Other errors pass unchanged.
   */
  describeError(error: Error): Error {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      const what = code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded';
      return new OperationError(`${what} in storage ${this.name} (${this.root})`, {
        cause: error,
        hint: `Free space in ${this.root}, or point the storage at a larger filesystem. Nothing partial was kept.`,
      });
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'EIO') {
      return new OperationError(`storage ${this.name} (${this.root}): ${error.message}`, { cause: error });
    }
    return error;
  }

  async openArchive(_id: string, file: string): Promise<ArchiveReader> {
    try {
      return await openLocalArchive(this.archivePath(file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new VerificationError(`archive ${this.archivePath(file)} is missing`, { cause: error });
      throw error;
    }
  }

  /**
   * The sidecar is moved aside under a temporary name first, so the backup leaves every listing at
   * once; then the archive goes, then the sidecar. A run that dies on the way leaves a dead run's
   * temporary sidecar, which the target's next run removes with the archive (partial.ts).
   */
  async remove(id: string, file: string): Promise<void> {
    const aside = this.tempPath(id, 'json');
    const moved = await rename(this.sidecarPath(id), aside).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    await rm(this.archivePath(file), { force: true });
    if (moved) await rm(aside, { force: true });
  }

  removeLeftovers(target: string): Promise<string[]> {
    return removePartials(this.root, target);
  }

  async lock(target: string, command: string, now: Date): Promise<Lock> {
    await this.ensure();
    return acquireLock(this.root, target, command, now).catch((error: Error) => {
      throw this.describeError(error);
    });
  }
}

/** Random access to an archive file on this machine. */
export async function openLocalArchive(file: string): Promise<ArchiveReader> {
  const handle: FileHandle = await open(file, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  return {
    name: file,
    size,
    localPath: file,
    read: async (buffer, offset, length, position) => (await handle.read(buffer, offset, length, position)).bytesRead,
    stream: (start, end) => (end <= start ? Readable.from([]) : createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 })),
    close: () => handle.close(),
  };
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

async function freeSpace(folder: string): Promise<string> {
  const fs = await statfs(folder);
  return `${formatBytes(fs.bavail * fs.bsize)} free of ${formatBytes(fs.blocks * fs.bsize)}`;
}

function accessHint(folder: string): string {
  const uid = process.getuid?.();
  return `Give the user running backupkit${uid === undefined ? '' : ` (uid ${uid})`} write access to ${folder}, or point the storage's "path" elsewhere.`;
}

async function fsyncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

