/**
 * diff: what changed between two backups (contract: `diff <refA> <refB>`): units added, removed
 * and whose count changed; files (the archive's `files/` entries) added, removed and changed by
 * size or SHA-256. Plain backups are compared from their sidecars alone; an encrypted one's
 * manifest is read from inside it, which needs its identity.
 */
import { VerificationError } from '../core/errors.js';
import { type EntryRecord, MANIFEST_ENTRY, type Manifest, type Unit, isEncrypted, matchesClear } from '../core/manifest.js';
import { ZipReader } from '../pipeline/zipreader.js';
import type { AppDeps } from './deps.js';
import { plainArchive } from './keys.js';
import { resolveRef } from './refs.js';

export interface DiffResult {
  from: string;
  to: string;
  units: {
    added: Unit[];
    removed: Unit[];
    changed: { name: string; from: number | null; to: number | null }[];
  };
  files: {
    added: EntryRecord[];
    removed: EntryRecord[];
    changed: { path: string; from: { size: number; sha256: string }; to: { size: number; sha256: string } }[];
  };
}

export async function diffBackups(deps: AppDeps, refA: string, refB: string, options: { target: string | undefined }): Promise<DiffResult> {
  const a = await manifestOf(deps, refA, options.target);
  const b = await manifestOf(deps, refB, options.target);
  return compareManifests(a, b);
}

/** The difference from `a` to `b` (pure). */
export function compareManifests(a: Manifest, b: Manifest): DiffResult {
  const unitsA = new Map(a.units.map((u) => [u.name, u]));
  const unitsB = new Map(b.units.map((u) => [u.name, u]));
  const filesA = new Map(fileEntries(a).map((e) => [e.path, e]));
  const filesB = new Map(fileEntries(b).map((e) => [e.path, e]));
  return {
    from: a.id,
    to: b.id,
    units: {
      added: b.units.filter((u) => !unitsA.has(u.name)),
      removed: a.units.filter((u) => !unitsB.has(u.name)),
      changed: b.units.flatMap((u) => {
        const before = unitsA.get(u.name);
        return before && before.count !== u.count ? [{ name: u.name, from: before.count, to: u.count }] : [];
      }),
    },
    files: {
      added: [...filesB.values()].filter((e) => !filesA.has(e.path)),
      removed: [...filesA.values()].filter((e) => !filesB.has(e.path)),
      changed: [...filesB.values()].flatMap((e) => {
        const before = filesA.get(e.path);
        return before && (before.size !== e.size || before.sha256 !== e.sha256)
          ? [{ path: e.path, from: { size: before.size, sha256: before.sha256 }, to: { size: e.size, sha256: e.sha256 } }]
          : [];
      }),
    },
  };
}

/** The stored files: entries under files/, folders left out. */
function fileEntries(manifest: Manifest): EntryRecord[] {
  return manifest.entries
    .filter((e) => e.path.startsWith('files/') && !e.path.endsWith('/'))
    .map((e) => ({ path: e.path, size: e.size, sha256: e.sha256 }))
    .sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/** A backup's manifest: its plain sidecar, or read from inside the archive (decrypted with the identity). */
async function manifestOf(deps: AppDeps, ref: string, target: string | undefined): Promise<Manifest> {
  const resolved = await resolveRef(deps, ref, target);
  const { sidecar } = resolved;
  if (sidecar && !isEncrypted(sidecar)) {
    const { archive: _archive, encryption: _encryption, ...manifest } = sidecar;
    return manifest;
  }
  const archive = await resolved.open();
  try {
    const plain = (await plainArchive(deps, archive, sidecar, { required: true, what: sidecar?.id ?? resolved.name, target }))!;
    const reader = await ZipReader.fromArchive(plain);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await reader.readText(MANIFEST_ENTRY)) as Manifest;
    } catch (error) {
      throw new VerificationError(`${resolved.name}: manifest.json cannot be read`, { cause: error });
    } finally {
      reader.close();
    }
    if (sidecar && isEncrypted(sidecar) && !matchesClear(manifest, sidecar)) {
      throw new VerificationError(`${sidecar.id}: manifest.json inside the encrypted archive does not match the sidecar`);
    }
    return manifest;
  } finally {
    await archive.close();
  }
}
