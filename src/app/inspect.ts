/**
 * inspect: one backup's sidecar, or for an archive given by path alone, its manifest. An encrypted
 * backup shows its full manifest with an identity; without one, its clear sidecar (`encrypted`).
 */
import path from 'node:path';
import { VerificationError } from '../core/errors.js';
import { type EncryptedSidecar, type Manifest, type Sidecar, isEncrypted } from '../core/manifest.js';
import type { ArchiveReader } from '../core/storage.js';
import { checkArchive, hashArchive } from '../pipeline/verify.js';
import type { AppDeps } from './deps.js';
import { plainArchive } from './keys.js';
import { resolveRef } from './refs.js';

export type Inspected = (Sidecar | (Manifest & { archive: Sidecar['archive']; encryption: EncryptedSidecar['encryption'] })) & { storages?: string[] };

/**
 * The manifest inside an archive, once the archive's structure and its manifest have passed the
 * checks verify makes without reading the entries' data (entry names, links, sizes, the manifest's
 * shape): inspect never shows a damaged or hostile archive as a backup (exit 3). Damage inside an
 * entry's data is verify's to find.
 */
async function readManifest(archive: ArchiveReader, name: string): Promise<Manifest> {
  const checked = await checkArchive(archive, undefined, { entries: false });
  if (!checked.ok || !checked.manifest) throw new VerificationError(`${name}: ${checked.error}`, { hint: 'Run backupkit verify on it for the full check.' });
  return checked.manifest;
}

export async function inspectBackup(deps: AppDeps, ref: string, target: string | undefined): Promise<Inspected> {
  const resolved = await resolveRef(deps, ref, target);
  const storages = resolved.byPath ? {} : { storages: resolved.storages.map((s) => s.name) };
  const { sidecar } = resolved;
  if (sidecar && !isEncrypted(sidecar)) return { ...sidecar, ...storages };
  const archive = await resolved.open();
  try {
    const plain = await plainArchive(deps, archive, sidecar, { required: sidecar === undefined, what: sidecar?.id ?? resolved.name, target });
    if (!plain) return { ...sidecar!, ...storages };
    const manifest = await readManifest(plain, resolved.name);
    if (sidecar && isEncrypted(sidecar)) return { ...manifest, archive: sidecar.archive, encryption: sidecar.encryption, ...storages };
    const { sha256 } = await hashArchive(archive, undefined, false);
    return { ...manifest, archive: { file: path.basename(resolved.name), size: archive.size, sha256 } };
  } finally {
    await archive.close();
  }
}
