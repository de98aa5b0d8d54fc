/**
 * Checking an archive against its sidecar and its own manifest:
 *   archive    the file exists, its size and SHA-256 match the sidecar
 *   manifest   the zip opens, manifest.json matches the sidecar, every listed entry is present,
 *              nothing unlisted is there, and no entry would land outside its folder
 *   checksums  every entry's size and SHA-256 match the manifest (reads every entry)
 * A differential backup's entries that name its base are in the base's archive, not this one:
 * they are checked there (app/chain.ts), and only their `base` here.
 */
import { errorMessage, saysNothingOfArchive } from '../core/errors.js';
import { ARCHIVE_FORMAT, MANIFEST_ENTRY, type Manifest, type Sidecar, fileSetProblem, isEncrypted, manifestProblem, matchesClear } from '../core/manifest.js';
import { formatBytes } from '../core/format.js';
import type { ArchiveReader } from '../core/storage.js';
import { unsafeFileEntries } from './files.js';
import { hashFileRange, hashStream } from './hash.js';
import { hashFileInWorker } from './hashworker.js';
import { ZipReader } from './zipreader.js';

export type CheckName = 'archive' | 'base' | 'checksums' | 'manifest';

export interface CheckResult {
  ok: boolean;
  checks: CheckName[];
  error: string | null;
  manifest: Manifest | undefined;
}

export interface CheckOptions {
  /** Hash every entry too (verify); restore hashes them as it streams instead. */
  entries: boolean;
  onBytes?: (n: number) => void;
  /**
   * The plain zip, when `archive` is an age file and its identity is at hand. An encrypted archive
   * without it is checked by size and SHA-256 alone (`checks: ["archive"]`).
   */
  decrypted?: ArchiveReader | undefined;
}

/** The archive's SHA-256: in a worker for a local file, else as its bytes stream in. */
export function hashArchive(archive: ArchiveReader, onBytes?: (n: number) => void, inWorker = true): Promise<{ sha256: string; size: number }> {
  if (archive.localPath && inWorker) return hashFileInWorker(archive.localPath, archive.size, onBytes);
  return hashStream(archive.stream(0, archive.size), onBytes);
}

export async function checkArchive(archive: ArchiveReader, sidecar: Sidecar | undefined, options: CheckOptions): Promise<CheckResult> {
  const checks: CheckName[] = [];
  const fail = (error: string, manifest?: Manifest): CheckResult => ({ ok: false, checks, error, manifest });

  // The whole-file hash runs in a worker while the entries are checked here.
  let archiveHash: Promise<{ sha256: string; size: number }> | undefined;
  if (sidecar) {
    const size = archive.size;
    if (size !== sidecar.archive.size) {
      return fail(`archive is ${size < sidecar.archive.size ? 'truncated' : 'larger than recorded'}: ${formatBytes(size)}, expected ${formatBytes(sidecar.archive.size)}`);
    }
    if (!options.entries) {
      // Nothing runs beside the hash here: no worker to start. A local file is read into reused
      // buffers, which leaves this thread free between reads (restore loads modules meanwhile).
      const { sha256 } = archive.localPath ? await hashFileRange(archive.localPath, size, options.onBytes) : await hashArchive(archive, options.onBytes, false);
      if (sha256 !== sidecar.archive.sha256) return fail(`archive checksum mismatch: SHA-256 ${sha256}, expected ${sidecar.archive.sha256}`);
      checks.push('archive');
    } else {
      archiveHash = hashArchive(archive, options.onBytes);
      archiveHash.catch(() => undefined);
    }
  }
  const encrypted = sidecar !== undefined && isEncrypted(sidecar);
  if (encrypted && !options.decrypted) {
    if (archiveHash) {
      const { sha256 } = await archiveHash;
      if (sha256 !== sidecar.archive.sha256) return fail(`archive checksum mismatch: SHA-256 ${sha256}, expected ${sidecar.archive.sha256}`);
      checks.push('archive');
    }
    return { ok: true, checks, error: null, manifest: undefined };
  }
  const entryChecks = await checkEntries(options.decrypted ?? archive, sidecar, options, checks);
  if (archiveHash) {
    const { sha256 } = await archiveHash;
    if (sha256 !== sidecar!.archive.sha256) {
      return fail(`archive checksum mismatch: SHA-256 ${sha256}, expected ${sidecar!.archive.sha256}`, entryChecks.manifest);
    }
    checks.push('archive');
  }
  if (!entryChecks.ok) return { ...entryChecks, checks };
  checks.sort();
  return { ok: true, checks, error: null, manifest: entryChecks.manifest };
}

/** The zip structure, the manifest against the sidecar, and (with `entries`) every entry's hash. */
async function checkEntries(archive: ArchiveReader, sidecar: Sidecar | undefined, options: CheckOptions, checks: CheckName[]): Promise<CheckResult> {
  const fail = (error: string, manifest?: Manifest): CheckResult => ({ ok: false, checks, error, manifest });
  let reader: ZipReader;
  try {
    reader = await ZipReader.fromArchive(archive);
  } catch (error) {
    if (saysNothingOfArchive(error)) throw error;
    return fail(errorMessage(error));
  }
  try {
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await reader.readText(MANIFEST_ENTRY)) as Manifest;
    } catch (error) {
      if (saysNothingOfArchive(error)) throw error;
      return fail(`manifest.json cannot be read: ${errorMessage(error)}`);
    }
    if (manifest?.format !== ARCHIVE_FORMAT) return fail(`unknown archive format ${JSON.stringify(manifest?.format)}`);
    const problem = manifestProblem(manifest);
    if (problem) return fail(`manifest.json is not a valid backupkit manifest: ${problem}`);
    if (sidecar && isEncrypted(sidecar)) {
      if (!matchesClear(manifest, sidecar)) return fail('manifest.json inside the encrypted archive does not match the sidecar', manifest);
    } else if (sidecar) {
      const { archive: _archive, encryption: _encryption, ...fromSidecar } = sidecar;
      if (canonical(fromSidecar) !== canonical(manifest)) return fail('manifest.json inside the archive does not match the sidecar', manifest);
    }
    const symlinks = new Map<string, string>();
    for (const entry of reader.entries.values()) {
      if (entry.type === 'symlink') symlinks.set(entry.name, await reader.readText(entry.name));
    }
    const unsafe = unsafeFileEntries(reader.entries.values(), symlinks);
    if (unsafe.length > 0) return fail(`unsafe entries: ${unsafe.join('; ')}`, manifest);
    const listed = new Set(manifest.entries.map((e) => e.path));
    for (const entry of manifest.entries) {
      if (entry.base !== undefined) {
        if (entry.base !== manifest.base || !entry.path.startsWith('files/')) return fail(`entry ${entry.path} names the base ${entry.base}, but the backup's base is ${manifest.base ?? 'none'}`, manifest);
        if (reader.entries.has(entry.path)) return fail(`entry ${entry.path} is in the archive but its manifest says its base holds it`, manifest);
        continue;
      }
      const zipEntry = reader.entries.get(entry.path);
      if (!zipEntry) return fail(`entry ${entry.path} is missing from the archive`, manifest);
      if (zipEntry.size !== entry.size) return fail(`entry ${entry.path}: size ${zipEntry.size}, expected ${entry.size}`, manifest);
    }
    for (const entry of reader.entries.values()) {
      if (entry.type !== 'directory' && entry.name !== MANIFEST_ENTRY && !listed.has(entry.name)) {
        return fail(`entry ${entry.name} is in the archive but not in its manifest`, manifest);
      }
    }
    const misfit = fileSetProblem(manifest);
    if (misfit) return fail(`manifest.json is not a valid backupkit manifest: ${misfit}`, manifest);
    checks.push('manifest');

    if (options.entries) {
      for (const entry of manifest.entries) {
        if (entry.base !== undefined) continue;
        let sha256: string;
        try {
          ({ sha256 } = await hashStream(await reader.open(entry.path), options.onBytes));
        } catch (error) {
          if (saysNothingOfArchive(error)) throw error;
          return fail(`entry ${entry.path} cannot be read: ${errorMessage(error)}`, manifest);
        }
        if (sha256 !== entry.sha256) return fail(`entry ${entry.path}: checksum mismatch`, manifest);
      }
      checks.push('checksums');
    }
    return { ok: true, checks, error: null, manifest };
  } finally {
    reader.close();
  }
}

/** JSON with sorted keys, for comparing documents whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
