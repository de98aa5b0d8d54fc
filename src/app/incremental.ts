/**
 * Planning a backup of an `incremental` target's files: full, or differential against the last
 * full backup (its base). Beyond core/incremental.ts's reasons for a full backup (none yet,
 * `fullEvery`, `--full`, the last one missing or bad), one is made when the target's `files` list
 * changed since, or when the base's file list cannot be read (an encrypted base with no key and
 * no index at hand). The log says which.
 *
 * The base's file list comes from its sidecar; an encrypted base keeps none in clear, so the host
 * that made it keeps an index of its files in the state folder (`.incremental/<target>.json`,
 * 0600; this host has the files in clear anyway), and a host with the key reads the base's own
 * manifest instead.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TargetConfig } from '../config/load.js';
import { errorMessage } from '../core/errors.js';
import { planChain } from '../core/incremental.js';
import { type EntryRecord, type FileSet, MANIFEST_ENTRY, type Manifest, type Sidecar, isEncrypted } from '../core/manifest.js';
import type { Storage, StorageListing } from '../core/storage.js';
import { type BaseIndex, baseIndex, differentialStats } from '../pipeline/incremental.js';
import { ZipReader } from '../pipeline/zipreader.js';
import { listStorage } from './catalog.js';
import { everyStorage } from './chain.js';
import type { AppDeps } from './deps.js';
import { keyRing, plainArchive } from './keys.js';

export type FilesPlan = { kind: 'full'; reason: string } | { kind: 'differential'; base: string; index: BaseIndex };

/** Full or differential, and why; logged. Only for a target with `incremental` whose backup holds files. */
export async function planFiles(deps: AppDeps, target: TargetConfig, options: { full: boolean; now: Date }): Promise<FilesPlan> {
  const plan = await decide(deps, target, options);
  if (plan.kind === 'full') deps.log.info({ target: target.name }, `full backup of ${target.name}'s files: ${plan.reason}`);
  else deps.log.info({ target: target.name, base: plan.base }, `differential backup of ${target.name}'s files against ${plan.base}`);
  return plan;
}

async function decide(deps: AppDeps, target: TargetConfig, options: { full: boolean; now: Date }): Promise<FilesPlan> {
  const incremental = target.incremental!;
  if (options.full) return { kind: 'full', reason: '--full was given' };
  const listings = new Map<Storage, StorageListing>();
  for (const storage of await everyStorage(deps)) {
    try {
      listings.set(storage, await listStorage(deps, storage));
    } catch (error) {
      deps.log.warn({ storage: storage.name }, `storage ${storage.name} cannot be listed to find the last full backup: ${errorMessage(error)}`);
    }
  }
  const sidecars = new Map<string, Sidecar>();
  const archived = new Set<string>();
  for (const listing of listings.values()) {
    for (const s of listing.sidecars) {
      if (s.target !== target.name) continue;
      if (!sidecars.has(s.id)) sidecars.set(s.id, s);
      if (listing.archives.get(s.id)?.size === s.archive.size) archived.add(s.id);
    }
  }
  const lastVerify = new Map<string, { ok: boolean; error: string | null }>();
  for (const run of await deps.state.readHistory()) if (run.command === 'verify' && run.id && sidecars.has(run.id)) lastVerify.set(run.id, run);
  const plan = planChain({ full: options.full, now: options.now, fullEveryMs: incremental.fullEveryMs, backups: [...sidecars.values()], archived, lastVerify });
  if (plan.kind === 'full') return plan;

  const base = sidecars.get(plan.base)!;
  const what = `the last full backup ${base.id}`;
  const holding = [...listings].filter(([, l]) => l.archives.get(base.id)?.size === base.archive.size).map(([s]) => s);
  const listed = await fileList(deps, target, base, holding);
  if (typeof listed === 'string') return { kind: 'full', reason: `${what} is encrypted and its file list cannot be read here: ${listed}` };
  if (listed.fileSets.length !== target.files.length || listed.fileSets.some((f, i) => f.path !== target.files[i])) {
    return { kind: 'full', reason: `the target's "files" changed since ${what}` };
  }
  const missing = deps.storages.forTarget(target).filter((s) => !holding.some((h) => h.name === s.name));
  if (missing.length > 0) {
    deps.log.warn({ target: target.name, base: base.id }, `${base.id} is not in ${missing.map((s) => s.name).join(', ')}: a restore from there reads it from ${holding.map((s) => s.name).join(', ')}`);
  }
  return { kind: 'differential', base: base.id, index: baseIndex(base.id, listed.entries, incremental.compare) };
}

interface FileList {
  fileSets: Pick<FileSet, 'index' | 'path'>[];
  entries: EntryRecord[];
}

/** The base's files: from its sidecar, else the index this host kept, else its own manifest (with a key); else why not. */
async function fileList(deps: AppDeps, target: TargetConfig, base: Sidecar, holding: Storage[]): Promise<FileList | string> {
  if (!isEncrypted(base)) return { fileSets: base.fileSets, entries: base.entries };
  const kept = await readIndex(deps, target.name);
  if (kept && kept.id === base.id && kept.sha256 === base.archive.sha256) return { fileSets: kept.fileSets, entries: kept.entries };
  const ring = await keyRing(deps, target.name).catch(() => undefined);
  if (!ring || (ring.identities.length === 0 && ring.passphrases.length === 0)) {
    return 'no index of it on this host and no identity to open it (give --identity, or encryption.identityFile)';
  }
  const reasons: string[] = [];
  for (const storage of holding) {
    try {
      const raw = await storage.openArchive(base.id, base.archive.file);
      try {
        const plain = (await plainArchive(deps, raw, base, { required: true, what: base.id, target: target.name }))!;
        const reader = await ZipReader.fromArchive(plain);
        try {
          const manifest = JSON.parse(await reader.readText(MANIFEST_ENTRY)) as Manifest;
          return { fileSets: manifest.fileSets, entries: manifest.entries };
        } finally {
          reader.close();
        }
      } finally {
        await raw.close();
      }
    } catch (error) {
      reasons.push(`${storage.name}: ${errorMessage(error)}`);
    }
  }
  return reasons.join('; ');
}

interface FilesIndex extends FileList {
  id: string;
  /** The archive's SHA-256: an index is used only for the very archive it was made with. */
  sha256: string;
}

function indexPath(deps: AppDeps, target: string): string {
  return path.join(deps.state.root, '.incremental', `${target}.json`);
}

async function readIndex(deps: AppDeps, target: string): Promise<FilesIndex | undefined> {
  try {
    const value = JSON.parse(await readFile(indexPath(deps, target), 'utf8')) as FilesIndex;
    return typeof value.id === 'string' && Array.isArray(value.entries) && Array.isArray(value.fileSets) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Once a backup of an incremental target is committed: a full encrypted one leaves the index of
 * its files for the differential backups after it; a differential one logs how much it stored.
 */
export async function afterFilesBackup(deps: AppDeps, target: TargetConfig, manifest: Manifest, sidecar: Sidecar, plan: FilesPlan): Promise<void> {
  if (plan.kind === 'differential') {
    const { stored, fromBase } = differentialStats(manifest.entries);
    deps.log.info({ id: manifest.id, base: plan.base }, `${manifest.id}: ${stored} changed file(s) stored, ${fromBase} unchanged in ${plan.base}`);
    return;
  }
  if (!isEncrypted(sidecar)) return;
  const file = indexPath(deps, target.name);
  const temp = `${file}.${process.pid}.tmp`;
  const index: FilesIndex = {
    id: manifest.id,
    sha256: sidecar.archive.sha256,
    fileSets: manifest.fileSets.map(({ index: n, path: p }) => ({ index: n, path: p })),
    entries: manifest.entries.filter((e) => e.path.startsWith('files/')),
  };
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(temp, JSON.stringify(index), { mode: 0o600 });
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    deps.log.warn(`could not keep the file index of ${manifest.id} for the next differential backups (${errorMessage(error)}); they will need its identity`);
  }
}
