/**
 * backup: one archive per target. The driver streams into entries under db/, the file sets follow
 * under files/<n>/, manifest.json comes last; the archive is written under a temporary name,
 * flushed, renamed, and the sidecar written after it. Any failure, timeout or interrupt removes
 * the partial file, so nothing half-made is ever listed.
 */
import { rm } from 'node:fs/promises';
import type { TargetConfig } from '../config/load.js';
import type { EntrySink } from '../core/driver.js';
import { BackupkitError, UsageError, errorMessage, exitCodeOf, type ExitCodeValue, ExitCode } from '../core/errors.js';
import { nextId } from '../core/ids.js';
import { ARCHIVE_FORMAT, type BackupRecord, type EntryRecord, type FileSet, type Manifest, type Part, type Sidecar, type Unit, toRecord, type ToolInfo } from '../core/manifest.js';
import { addFileSet } from '../pipeline/files.js';
import { ZipWriter } from '../pipeline/zipwriter.js';
import { acquireLock, type Lock } from '../storage/lock.js';
import { type AppDeps, driverContext, recordRun, selectTargets, withTimeout } from './deps.js';

export interface BackupOptions {
  parts: Part[];
  tags: string[];
  note: string | null;
}

export interface BackupFailure {
  target: string;
  error: string;
  code: ExitCodeValue;
}

export interface BackupManyResult {
  backups: BackupRecord[];
  failures: BackupFailure[];
}

/** Back up the named targets (all when none are named); one failing does not stop the others. */
export async function backupTargets(deps: AppDeps, names: string[], options: BackupOptions): Promise<BackupManyResult> {
  const targets = selectTargets(deps, names);
  const result: BackupManyResult = { backups: [], failures: [] };
  for (const target of targets) {
    if (deps.signal.aborted) throw deps.signal.reason;
    try {
      const sidecar = await backupTarget(deps, target, options);
      result.backups.push(toRecord(sidecar));
    } catch (error) {
      if (exitCodeOf(error) === ExitCode.interrupted) throw error;
      const hint = error instanceof BackupkitError && error.hint ? `\n${error.hint}` : '';
      deps.log.error({ target: target.name }, `backup of ${target.name} failed: ${errorMessage(error)}${hint}`);
      deps.log.debug({ err: error }, 'cause');
      result.failures.push({ target: target.name, error: errorMessage(error), code: exitCodeOf(error) });
    }
  }
  return result;
}

/** One target: lock, dump, commit. With `lock: false` the caller already holds the target's lock. */
export async function backupTarget(
  deps: AppDeps,
  target: TargetConfig,
  options: BackupOptions & { lock?: boolean; driverOptions?: Record<string, unknown> },
): Promise<Sidecar> {
  const started = deps.now();
  let id: string | null = null;
  let lock: Lock | undefined;
  try {
    if (!options.parts.includes('db') && target.files.length === 0) {
      throw new UsageError(`target ${target.name} has no "files" to back up`, { hint: 'Drop --only files, or add "files" to the target.' });
    }
    await target.driver.checkTools?.({ ...driverContext(deps, target, deps.signal, target.name) }, options.driverOptions ?? target.options, 'dump');
    await deps.storage.ensure();
    if (options.lock !== false) lock = await acquireLock(deps.storage.root, target.name, 'backup', started);
    const removed = await deps.storage.removeLeftovers(target.name);
    if (removed.length > 0) deps.log.info({ files: removed }, `removed ${removed.length} leftover file(s) of an interrupted run`);
    id = nextId(target.name, started, (candidate) => deps.storage.isTaken(candidate));
    const sidecar = await writeArchive(deps, target, id, started, options);
    deps.log.info({ target: target.name, id, size: sidecar.archive.size }, `backup ${id} written`);
    await recordRun(deps, { command: 'backup', target: target.name, id, started, error: undefined });
    return sidecar;
  } catch (error) {
    await recordRun(deps, { command: 'backup', target: target.name, id, started, error });
    throw error;
  } finally {
    await lock?.release();
  }
}

async function writeArchive(
  deps: AppDeps,
  target: TargetConfig,
  id: string,
  started: Date,
  options: BackupOptions & { driverOptions?: Record<string, unknown> },
): Promise<Sidecar> {
  const driverOptions = options.driverOptions ?? target.options;
  const { signal, dispose } = withTimeout(deps.signal, target.timeoutMs, `backup of ${target.name}`);
  // Stored (level 0), an archive costs little more than its SHA-256 hashes: the archive's is taken by
  // a worker, on the second core. Deflating, both cores are busy already, and the worker's 10 MB
  // would buy nothing.
  const hashInWorker = target.compressionLevel === 0;
  const { tempPath, stream } = deps.storage.createArchive(id, { hashInWorker });
  const writer = new ZipWriter(stream, target.compressionLevel, (n) => deps.progress.bytes(n), hashInWorker ? { archiveHash: () => stream.sha256() } : {});
  const onAbort = () => writer.abort(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const entries: EntryRecord[] = [];
    let units: Unit[] = [];
    let tool: ToolInfo | null = null;
    const fileSets: FileSet[] = [];
    if (options.parts.includes('db')) {
      deps.progress.start(`${target.name}: dumping`);
      const record = async (path: string, write: () => Promise<EntryRecord>) => {
        if (!path.startsWith('db/')) throw new BackupkitError(`driver ${target.driver.name} wrote ${path}, outside db/`);
        const written = await write();
        entries.push(written);
        return written;
      };
      const sink: EntrySink = {
        add: (path, source, entryOptions) => record(path, () => writer.add(path, source, entryOptions)),
        addFile: (path, file, entryOptions) => record(path, () => writer.addFile(path, file, entryOptions)),
      };
      const result = await target.driver.dump(driverContext(deps, target, signal, id), driverOptions, sink);
      units = result.units;
      tool = result.tool;
    }
    if (options.parts.includes('files')) {
      for (const [index, source] of target.files.entries()) {
        deps.progress.start(`${target.name}: files ${source}`);
        const added = await addFileSet(writer, index, source, deps.log);
        entries.push(...added.entries);
        fileSets.push(added.fileSet);
      }
    }
    const finished = deps.now();
    const manifest: Manifest = {
      format: ARCHIVE_FORMAT,
      id,
      target: target.name,
      driver: target.driver.name,
      createdAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      backupkitVersion: deps.version,
      host: deps.host,
      tool,
      source: target.driver.describe(driverOptions),
      parts: options.parts.filter((p) => p === 'db' || target.files.length > 0),
      units,
      fileSets,
      entries,
      tags: options.tags,
      note: options.note,
    };
    await writer.addBuffer('manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { compressed: false });
    const archive = await writer.finish();
    if (signal.aborted) throw signal.reason;
    await deps.storage.commitArchive(tempPath, id);
    const sidecar: Sidecar = { ...manifest, archive: { file: `${id}.zip`, ...archive } };
    await deps.storage.writeSidecar(sidecar);
    return sidecar;
  } catch (error) {
    writer.abort(error as Error);
    stream.destroy();
    await rm(tempPath, { force: true });
    throw signal.aborted ? signal.reason : error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    dispose();
    deps.progress.stop();
  }
}
