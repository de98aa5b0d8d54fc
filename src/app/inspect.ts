/** inspect: one backup's sidecar (or, for an archive given by path alone, its manifest). */
import path from 'node:path';
import { VerificationError } from '../core/errors.js';
import { MANIFEST_ENTRY, type Manifest, type Sidecar } from '../core/manifest.js';
import { hashArchive } from '../pipeline/verify.js';
import { ZipReader } from '../pipeline/zipreader.js';
import type { AppDeps } from './deps.js';
import { resolveRef } from './refs.js';

export async function inspectBackup(deps: AppDeps, ref: string, target: string | undefined): Promise<Sidecar & { storages?: string[] }> {
  const resolved = await resolveRef(deps, ref, target);
  if (resolved.sidecar) return resolved.byPath ? resolved.sidecar : { ...resolved.sidecar, storages: resolved.storages.map((s) => s.name) };
  const archive = await resolved.open();
  try {
    const reader = await ZipReader.fromArchive(archive);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await reader.readText(MANIFEST_ENTRY)) as Manifest;
    } catch (error) {
      throw new VerificationError(`${resolved.name}: manifest.json cannot be read`, { cause: error });
    } finally {
      reader.close();
    }
    const { sha256 } = await hashArchive(archive, undefined, false);
    return { ...manifest, archive: { file: path.basename(resolved.name), size: archive.size, sha256 } };
  } finally {
    await archive.close();
  }
}
