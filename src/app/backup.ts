/**
 * backup: one archive per target. The driver streams into entries under db/, the file sets follow
 * under files/<n>/, manifest.json comes last. The one stream feeds every storage of the target at
 * once (fanout.ts); each storage commits its archive and then its sidecar on its own. Any failure,
 * timeout or interrupt drops what was written, so nothing half-made is ever listed. A storage that
 * fails does not stop the others: the backup lands where it could and the failure names the
 * storage.
 */
import { pipeline } from 'node:stream';
import { finished as streamFinished } from 'node:stream/promises';
import type { TargetConfig } from '../config/load.js';
import type { EntrySink } from '../core/driver.js';
import { BackupkitError, UsageError, errorMessage, exitCodeOf, type ExitCodeValue, ExitCode } from '../core/errors.js';
import { archiveFileName, baseId, nextId } from '../core/ids.js';
import { ARCHIVE_FORMAT, type BackupRecord, type EntryRecord, type FileSet, type Manifest, type Part, type Sidecar, type Unit, encryptedSidecar, toRecord, type ToolInfo } from '../core/manifest.js';
import type { ArchiveUpload, Lock, Storage } from '../core/storage.js';
import { AgeEncrypt } from '../pipeline/age.js';
import { FanOut } from '../pipeline/fanout.js';
import { addFileSet } from '../pipeline/files.js';
import { ZipWriter } from '../pipeline/zipwriter.js';
import { type AppDeps, beginRun, driverContext, recordRun, selectTargets, withTimeout } from './deps.js';
import { type FilesPlan, afterFilesBackup, planFiles } from './incremental.js';

export interface BackupOptions {
  parts: Part[];
  tags: string[];
  note: string | null;
  /** A full backup of an `incremental` target's files, whatever its schedule of full backups. */
  full?: boolean;
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

/** A backup and where it landed; `failed` names the storages it did not reach. */
export interface BackupOutcome {
  sidecar: Sidecar;
  storages: string[];
  failed: { storage: string; error: unknown }[];
}

/** A backup that reached some of its storages: it exists, and the run still fails. */
export class PartialBackupError extends BackupkitError {
  constructor(readonly outcome: BackupOutcome) {
    super(
      outcome.failed.map((f) => `storage ${f.storage}: ${errorMessage(f.error)}`).join('; ') +
        ` (backup ${outcome.sidecar.id} is in ${outcome.storages.join(', ')})`,
    );
  }
}

/** Back up the named targets (all when none are named); one failing does not stop the others. */
export async function backupTargets(deps: AppDeps, names: string[], options: BackupOptions): Promise<BackupManyResult> {
  const targets = selectTargets(deps, names);
  const result: BackupManyResult = { backups: [], failures: [] };
  for (const target of targets) {
    if (deps.signal.aborted) throw deps.signal.reason;
    try {
      const outcome = await backupTarget(deps, target, options);
      result.backups.push(toRecord(outcome.sidecar, outcome.storages));
      for (const failed of outcome.failed) {
        const error = `storage ${failed.storage}: ${errorMessage(failed.error)}`;
        result.failures.push({ target: target.name, error, code: ExitCode.failed });
      }
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

/**
 * Take the target's lock in each of `storages` (config order, so two runs never wait on each
 * other crosswise), and clear what dead runs left there. Released in reverse on failure.
 */
export async function lockTarget(
  deps: AppDeps,
  target: Pick<TargetConfig, 'name'>,
  storages: Storage[],
  command: string,
  /** With it, a storage that cannot be reached is passed here and left out, not fatal (a lock held elsewhere still is). */
  unreachable?: (storage: Storage, error: unknown) => void,
): Promise<Lock> {
  const held: Lock[] = [];
  const release = async () => {
    for (const lock of held.reverse()) await lock.release().catch((error: unknown) => deps.log.warn(`could not release a lock of ${target.name}: ${errorMessage(error)}`));
  };
  try {
    await deps.state.ensure();
    for (const storage of storages) {
      let lock: Lock | undefined;
      try {
        await storage.ensure();
        lock = await storage.lock(target.name, command, deps.now());
        held.push(lock);
        const removed = await storage.removeLeftovers(target.name);
        if (removed.length > 0) deps.log.info({ storage: storage.name, files: removed }, `removed ${removed.length} leftover(s) of an interrupted run from ${storage.name}`);
      } catch (error) {
        if (!unreachable || exitCodeOf(error) === ExitCode.locked) throw error;
        unreachable(storage, error);
      }
    }
    const removed = await deps.state.removeLeftovers(target.name);
    if (removed.length > 0) deps.log.info({ files: removed }, `removed ${removed.length} leftover file(s) of an interrupted run`);
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

/** A new id: free in every storage the backup goes to; a storage that cannot say is passed to `unreachable`. */
async function freeId(target: TargetConfig, when: Date, storages: Storage[], unreachable: (storage: Storage, error: unknown) => void): Promise<string> {
  const prefix = baseId(target.name, when);
  const taken = new Set<string>();
  for (const storage of storages) {
    try {
      for (const id of await storage.idsTaken(prefix)) taken.add(id);
    } catch (error) {
      unreachable(storage, error);
    }
  }
  return nextId(target.name, when, (candidate) => taken.has(candidate));
}

/** One target: lock, dump, commit. With `lock: false` the caller already holds the target's lock. */
export async function backupTarget(
  deps: AppDeps,
  target: TargetConfig,
  options: BackupOptions & { lock?: boolean; driverOptions?: Record<string, unknown> },
): Promise<BackupOutcome> {
  const started = await beginRun(deps, 'backup', target.name);
  let id: string | null = null;
  let lock: Lock | undefined;
  try {
    if (!options.parts.includes('db') && target.files.length === 0) {
      throw new UsageError(`target ${target.name} has no "files" to back up`, { hint: 'Drop --only files, or add "files" to the target.' });
    }
    await target.driver.checkTools?.({ ...driverContext(deps, target, deps.signal, target.name) }, options.driverOptions ?? target.options, 'dump');
    // A storage that cannot be reached is left out and named; the backup goes to the others.
    const down: BackupOutcome['failed'] = [];
    const unreachable = (storage: Storage, error: unknown) => {
      deps.log.error({ target: target.name, storage: storage.name }, `storage ${storage.name} cannot be reached: ${errorMessage(error)}`);
      if (!down.some((d) => d.storage === storage.name)) down.push({ storage: storage.name, error });
    };
    const wanted = deps.storages.forTarget(target);
    if (options.lock !== false) lock = await lockTarget(deps, target, wanted, 'backup', unreachable);
    id = await freeId(target, started, wanted.filter((s) => !down.some((d) => d.storage === s.name)), unreachable);
    const storages = wanted.filter((s) => !down.some((d) => d.storage === s.name));
    if (storages.length === 0) throw down[0]!.error;
    const plan = target.incremental && options.parts.includes('files') && target.files.length > 0 ? await planFiles(deps, target, { full: options.full ?? false, now: started }) : undefined;
    const written = await writeArchive(deps, target, id, started, storages, { ...options, plan });
    const outcome = { ...written, failed: [...down, ...written.failed] };
    deps.log.info({ target: target.name, id, size: outcome.sidecar.archive.size, storages: outcome.storages }, `backup ${id} written to ${outcome.storages.join(', ')}`);
    const error = outcome.failed.length > 0 ? new PartialBackupError(outcome) : undefined;
    await recordRun(deps, { command: 'backup', target: target.name, id, started, error, size: outcome.sidecar.archive.size });
    return outcome;
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
  storages: Storage[],
  options: BackupOptions & { driverOptions?: Record<string, unknown>; plan?: FilesPlan | undefined },
): Promise<BackupOutcome> {
  const driverOptions = options.driverOptions ?? target.options;
  const { signal, dispose } = withTimeout(deps.signal, target.timeoutMs, `backup of ${target.name}`);
  const encryption = target.encryption;
  const file = encryption ? `${archiveFileName(id)}.age` : archiveFileName(id);
  // Encryption sits between the zip writer and the storages: every storage gets the one age file.
  const encrypt = encryption
    ? await AgeEncrypt.create(encryption.passphrase !== undefined ? { passphrase: encryption.passphrase } : { recipients: encryption.recipients })
    : undefined;
  // Stored (level 0) into one local folder, an archive costs little more than its SHA-256 hashes:
  // the archive's is taken by a worker, on the second core, reading the file back. Deflating, both
  // cores are busy already, and the worker's 10 MB would buy nothing.
  const hashInWorker = !encrypt && target.compressionLevel === 0 && storages.length === 1 && storages[0]!.type === 'local';
  const uploads = new Map<Storage, ArchiveUpload>(storages.map((storage) => [storage, storage.createArchive(id, file, { hashInWorker })]));
  const failed: BackupOutcome['failed'] = [];
  const onFailure = (name: string, error: Error) => deps.log.error({ target: target.name, storage: name }, `storage ${name} failed during backup ${id}: ${errorMessage(error)}`);
  const fanOut = storages.length > 1 ? new FanOut([...uploads].map(([storage, upload]) => ({ name: storage.name, stream: upload.stream })), onFailure) : undefined;
  const sink = fanOut ?? uploads.get(storages[0]!)!.stream;
  if (encrypt) pipeline(encrypt, sink, (error) => error && encrypt.destroy(error));
  const single = uploads.get(storages[0]!)!;
  const writer = new ZipWriter(encrypt ?? sink, target.compressionLevel, (n) => deps.progress.bytes(n), hashInWorker && single.sha256 ? { archiveHash: single.sha256 } : {});
  const onAbort = () => writer.abort(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  /** The storages where the archive is committed (its sidecar may be in place): cleaned up as a backup. */
  const committed = new Set<string>();
  const landed: string[] = [];
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
        const added = await addFileSet(writer, index, source, deps.log, options.plan?.kind === 'differential' ? options.plan.index : undefined);
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
      ...(options.plan?.kind === 'differential' ? { base: options.plan.base } : {}),
      units,
      fileSets,
      entries,
      tags: options.tags,
      note: options.note,
    };
    await writer.addBuffer('manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { compressed: false });
    let archive = await writer.finish();
    if (encrypt) {
      await streamFinished(sink);
      archive = { size: encrypt.size, sha256: encrypt.sha256() };
    }
    if (signal.aborted) throw signal.reason;
    const sidecar: Sidecar = encryption
      ? encryptedSidecar(manifest, encryption.passphrase !== undefined ? { type: 'age', passphrase: true } : { type: 'age', recipients: encryption.recipients }, { file, ...archive })
      : { ...manifest, archive: { file, ...archive } };
    for (const [name, error] of fanOut?.failures ?? []) failed.push({ storage: name, error });
    // Each storage commits on its own: archive, then sidecar.
    for (const [storage, upload] of uploads) {
      if (fanOut?.failures.has(storage.name)) continue;
      try {
        await upload.commit();
        committed.add(storage.name);
        await storage.writeSidecar(sidecar);
        landed.push(storage.name);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        deps.log.error({ target: target.name, storage: storage.name }, `storage ${storage.name} failed to commit backup ${id}: ${errorMessage(error)}`);
        failed.push({ storage: storage.name, error });
        // The sidecar (which may have landed before the error) goes first, then the archive.
        await storage.remove(id, file).catch(() => undefined);
        await upload.abort().catch(() => undefined);
        committed.delete(storage.name);
      }
    }
    if (landed.length === 0) throw failed[0]!.error;
    if (options.plan) await afterFilesBackup(deps, target, manifest, sidecar, options.plan);
    for (const f of failed) await uploads.get(storages.find((s) => s.name === f.storage)!)!.abort().catch(() => undefined);
    return { sidecar, storages: landed, failed };
  } catch (error) {
    writer.abort(error as Error);
    encrypt?.destroy();
    fanOut?.destroy();
    // Where the archive was committed, the backup is deleted as a backup (the storage takes its
    // sidecar out of the listing before the archive), so that no storage is left listing it without
    // its archive; then every upload is dropped.
    await Promise.all(
      [...uploads].map(async ([storage, upload]) => {
        try {
          if (committed.has(storage.name)) await storage.remove(id, file);
          await upload.abort();
        } catch (cleanupError) {
          deps.log.warn({ storage: storage.name }, `could not remove ${committed.has(storage.name) ? 'backup' : 'a partial archive of'} ${id} from ${storage.name}: ${errorMessage(cleanupError)}`);
        }
      }),
    );
    throw signal.aborted ? signal.reason : error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    dispose();
    deps.progress.stop();
  }
}
