/** inspect: one backup's sidecar (or, for an archive given by path alone, its manifest). */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { VerificationError } from '../core/errors.js';
import { MANIFEST_ENTRY, type Manifest, type Sidecar } from '../core/manifest.js';
import { hashFile } from '../pipeline/hash.js';
import { ZipReader } from '../pipeline/zipreader.js';
import type { AppDeps } from './deps.js';
import { resolveRef } from './refs.js';

export async function inspectBackup(deps: AppDeps, ref: string, target: string | undefined): Promise<Sidecar> {
  const resolved = await resolveRef(deps, ref, target);
  if (resolved.sidecar) return resolved.sidecar;
  const reader = await ZipReader.open(resolved.file);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await reader.readText(MANIFEST_ENTRY)) as Manifest;
  } catch (error) {
    throw new VerificationError(`${resolved.file}: manifest.json cannot be read`, { cause: error });
  } finally {
    reader.close();
  }
  const { sha256 } = await hashFile(resolved.file);
  return { ...manifest, archive: { file: path.basename(resolved.file), size: (await stat(resolved.file)).size, sha256 } };
}
