/**
 * The archive manifest (`manifest.json`, the archive's last entry), its sidecar (`<id>.json` beside
 * the archive) and the backup record that `backup --json` and `list --json` print.
 */
import { z } from 'zod';

export const ARCHIVE_FORMAT = 'backupkit-archive/1';
export const MANIFEST_ENTRY = 'manifest.json';

export type Part = 'db' | 'files';

export interface Unit {
  /** As `--only` takes it: `public.orders`, `users`, `shop.Order`. */
  name: string;
  kind: string;
  count: number | null;
}

export interface EntryRecord {
  path: string;
  size: number;
  sha256: string;
  /** In a differential backup: the full backup whose archive holds this file (not this archive). */
  base?: string;
}

export interface ToolInfo {
  name: string;
  version: string;
}

/** Where the data came from. Never holds a secret. */
export interface Source {
  database?: string;
  host?: string;
  port?: number;
  path?: string;
}

/** One `files` entry of the target, stored under `files/<index>/`. */
export interface FileSet {
  index: number;
  /** The path as resolved at backup time. */
  path: string;
  type: 'dir' | 'file';
  count: number;
  bytes: number;
}

export interface Manifest {
  format: typeof ARCHIVE_FORMAT;
  id: string;
  target: string;
  driver: string;
  createdAt: string;
  finishedAt: string;
  durationMs: number;
  backupkitVersion: string;
  host: string;
  tool: ToolInfo | null;
  source: Source;
  parts: Part[];
  /** A differential backup's full backup, which holds the files this archive does not; absent on a full one. */
  base?: string;
  units: Unit[];
  fileSets: FileSet[];
  entries: EntryRecord[];
  tags: string[];
  note: string | null;
}

export interface ArchiveInfo {
  file: string;
  size: number;
  sha256: string;
}

/** A plain backup's sidecar: the manifest, plus the archive file's size and hash. */
export interface PlainSidecar extends Manifest {
  archive: ArchiveInfo;
  encryption?: undefined;
}

export type EncryptionInfo = { type: 'age'; recipients: string[]; passphrase?: undefined } | { type: 'age'; passphrase: true; recipients?: undefined };

/**
 * An encrypted backup's sidecar keeps in clear only what list, clean, copy and plain verify need:
 * the record's fields, `format`, `parts` and `encryption`. Unit names, entries, file names and the
 * source stay inside the encrypted archive.
 */
export interface EncryptedSidecar {
  format: typeof ARCHIVE_FORMAT;
  id: string;
  target: string;
  driver: string;
  createdAt: string;
  durationMs: number;
  /** How many units and files the archive holds. */
  units: number;
  files: number;
  encrypted: true;
  tags: string[];
  note: string | null;
  parts: Part[];
  /** A differential backup's full backup, in clear: clean, copy and verify follow the chain without a key. */
  base?: string;
  encryption: EncryptionInfo;
  archive: ArchiveInfo;
}

export type Sidecar = PlainSidecar | EncryptedSidecar;

export function isEncrypted(sidecar: Sidecar): sidecar is EncryptedSidecar {
  return sidecar.encryption !== undefined;
}

function fileCount(manifest: Manifest): number {
  return manifest.entries.filter((e) => e.path.startsWith('files/') && !e.path.endsWith('/')).length;
}

/** The clear sidecar of an encrypted backup of `manifest`. */
export function encryptedSidecar(manifest: Manifest, encryption: EncryptionInfo, archive: ArchiveInfo): EncryptedSidecar {
  return {
    format: manifest.format,
    id: manifest.id,
    target: manifest.target,
    driver: manifest.driver,
    createdAt: manifest.createdAt,
    durationMs: manifest.durationMs,
    units: manifest.units.length,
    files: fileCount(manifest),
    encrypted: true,
    tags: manifest.tags,
    note: manifest.note,
    parts: manifest.parts,
    ...(manifest.base === undefined ? {} : { base: manifest.base }),
    encryption,
    archive,
  };
}

/** Does the manifest inside an encrypted archive agree with its clear sidecar? */
export function matchesClear(manifest: Manifest, sidecar: EncryptedSidecar): boolean {
  const { encryption, archive, ...clear } = sidecar;
  const expected = encryptedSidecar(manifest, encryption, archive);
  const { encryption: _e, archive: _a, ...fromManifest } = expected;
  return JSON.stringify(fromManifest) === JSON.stringify(clear);
}

export interface BackupRecord {
  id: string;
  target: string;
  driver: string;
  createdAt: string;
  durationMs: number;
  file: string;
  size: number;
  sha256: string;
  units: number;
  files: number;
  encrypted: boolean;
  tags: string[];
  note: string | null;
  /** The storages that hold it. */
  storages: string[];
}

export const PRE_RESTORE_TAG = 'pre-restore';

export function toRecord(sidecar: Sidecar, storages: string[]): BackupRecord {
  return {
    id: sidecar.id,
    target: sidecar.target,
    driver: sidecar.driver,
    createdAt: sidecar.createdAt,
    durationMs: sidecar.durationMs,
    file: sidecar.archive.file,
    size: sidecar.archive.size,
    sha256: sidecar.archive.sha256,
    units: isEncrypted(sidecar) ? sidecar.units : sidecar.units.length,
    files: isEncrypted(sidecar) ? sidecar.files : fileCount(sidecar),
    encrypted: isEncrypted(sidecar),
    tags: sidecar.tags,
    note: sidecar.note,
    storages,
  };
}

/** Newest first; ties broken by id so that `_2` sorts above its base id. */
export function newestFirst(a: { createdAt: string; id: string }, b: { createdAt: string; id: string }): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return compareIds(b.id, a.id);
}

function compareIds(a: string, b: string): number {
  const suffix = (id: string) => Number(/_(\d+)$/.exec(id.replace(/_\d{8}_\d{6}/, ''))?.[1] ?? 1);
  const baseA = a.replace(/_\d+$/, '');
  const baseB = b.replace(/_\d+$/, '');
  if (baseA !== baseB) return baseA < baseB ? -1 : 1;
  return suffix(a) - suffix(b);
}

/** Is this a plausible sidecar? Used to skip foreign or damaged JSON files in the storage folder. */
export function isSidecar(value: unknown): value is Sidecar {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Sidecar>;
  const shaped = (v as { encryption?: unknown }).encryption !== undefined ? Array.isArray(v.parts) : Array.isArray((v as Partial<PlainSidecar>).entries);
  return (
    v.format === ARCHIVE_FORMAT &&
    typeof v.id === 'string' &&
    typeof v.target === 'string' &&
    typeof v.createdAt === 'string' &&
    shaped &&
    typeof v.archive === 'object' &&
    v.archive !== null
  );
}

const count = z.number().int().nonnegative();
const entrySchema = z.looseObject({
  path: z.string().min(1),
  size: count,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in hex'),
  mode: z.number().int().min(0).max(0o7777).optional(),
  mtime: z.string().refine((t) => !Number.isNaN(Date.parse(t)), 'expected a date').optional(),
});
const manifestSchema = z.looseObject({
  format: z.literal(ARCHIVE_FORMAT),
  id: z.string().min(1),
  target: z.string().min(1),
  driver: z.string().min(1),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
  durationMs: z.number(),
  backupkitVersion: z.string().optional(),
  host: z.string().optional(),
  tool: z.looseObject({ name: z.string(), version: z.string() }).nullable(),
  source: z.looseObject({ database: z.string().optional(), host: z.string().optional(), port: z.number().optional(), path: z.string().optional() }),
  parts: z.array(z.enum(['db', 'files'])),
  units: z.array(z.looseObject({ name: z.string(), kind: z.string(), count: count.nullable() })),
  fileSets: z.array(z.looseObject({ index: count, path: z.string(), type: z.enum(['dir', 'file']), count, bytes: count })),
  entries: z.array(entrySchema),
  tags: z.array(z.string()),
  note: z.string().nullable(),
});

/**
 * What is wrong with a manifest read from an archive, or undefined when it is one. Restore, verify
 * and inspect act on what it says (where files go, their modes, which entries to read), so an
 * archive whose manifest is damaged or forged is refused (exit 3) rather than half-used. This is
 * the shape: every field there and of the right type; fileSetProblem adds how the files fit.
 */
export function manifestProblem(value: unknown): string | undefined {
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return undefined;
  const issue = parsed.error.issues[0]!;
  const at = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '');
  return `${at || '(top level)'}: ${issue.message}`;
}

/**
 * How a well-shaped manifest's files fit: every file entry under files/<n>/ with its mode and mtime
 * and a file set <n> to go to, each file set once, and one of type "file" holding one file.
 */
export function fileSetProblem(manifest: Manifest): string | undefined {
  const sets = new Map<number, FileSet>();
  for (const set of manifest.fileSets) {
    if (sets.has(set.index)) return `fileSets: index ${set.index} appears twice`;
    sets.set(set.index, set);
  }
  const held = new Map<number, number>();
  for (const entry of manifest.entries as (EntryRecord & { mode?: number; mtime?: string })[]) {
    if (!entry.path.startsWith('files/')) continue;
    const match = /^files\/(\d+)\/(.+)$/.exec(entry.path);
    const set = match ? sets.get(Number(match[1])) : undefined;
    if (!match || !set) return `entries: ${entry.path} belongs to no file set`;
    if (entry.mode === undefined || entry.mtime === undefined) return `entries: ${entry.path} has no mode or mtime`;
    if (set.type === 'file' && match[2]!.includes('/')) return `entries: ${entry.path} is in a folder, but file set ${set.index} is a single file`;
    held.set(set.index, (held.get(set.index) ?? 0) + 1);
  }
  for (const set of manifest.fileSets) {
    if (set.type === 'file' && (held.get(set.index) ?? 0) > 1) return `fileSets: file set ${set.index} is a single file, but ${held.get(set.index)} entries belong to it`;
  }
  return undefined;
}

/** What the rules below need of a target: its name, driver and file sets. */
export interface TargetShape {
  name: string;
  files: readonly string[];
  driver: { name: string };
}

/** Holds every part the target backs up: `db`, and `files` when the target has files. */
export function holdsEveryPart(target: Pick<TargetShape, 'files'>, sidecar: Pick<Sidecar, 'parts'>): boolean {
  return sidecar.parts.includes('db') && (target.files.length === 0 || sidecar.parts.includes('files'));
}

/**
 * A backup that puts the whole target back: made by its driver, holding every part, and not a
 * pre-restore snapshot. The newest such backup is what `latest` names (restore, inspect, verify,
 * copy), auto tries them newest first, and doctor and /healthz judge a target by the newest.
 */
export function isRestorable(target: TargetShape, sidecar: Sidecar): boolean {
  return sidecar.target === target.name && sidecar.driver === target.driver.name && holdsEveryPart(target, sidecar) && !sidecar.tags.includes(PRE_RESTORE_TAG);
}

/** Restorable, and whole in this storage: its archive listed at the size its sidecar records. */
export function isGoodIn(target: TargetShape, sidecar: Sidecar, listing: { archives: ReadonlyMap<string, { size: number }> }): boolean {
  return isRestorable(target, sidecar) && listing.archives.get(sidecar.id)?.size === sidecar.archive.size;
}
