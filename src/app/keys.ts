/**
 * Opening encrypted archives: which keys a run has (--identity, BACKUPKIT_IDENTITY_FILE, the
 * target's encryption.identityFile, or its passphrase), and the decrypted view of an age file.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors.js';
import { type Sidecar, isEncrypted } from '../core/manifest.js';
import type { ArchiveReader } from '../core/storage.js';
import { type KeyRing, isAgeFile, openDecrypted } from '../pipeline/age.js';
import type { AppDeps } from './deps.js';

/** The keys for a backup of `targetName` (a target the config may not have). */
export async function keyRing(deps: AppDeps, targetName: string | undefined): Promise<KeyRing> {
  const ring: KeyRing = { identities: [], passphrases: [] };
  const encryption = targetName ? deps.config.targets.get(targetName)?.encryption : undefined;
  const files: { file: string; source: string }[] = [];
  if (deps.identityFile) files.push({ file: deps.identityFile.file, source: deps.identityFile.source });
  if (encryption?.identityFile) files.push({ file: encryption.identityFile, source: `encryption.identityFile of ${targetName} (${encryption.identityFile})` });
  for (const { file, source } of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${source}: cannot read the identity file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
        hint: 'Give the file age-keygen wrote (AGE-SECRET-KEY-1...).',
      });
    }
    ring.identities.push({ source, text });
  }
  if (encryption?.passphrase) ring.passphrases.push(encryption.passphrase);
  return ring;
}

/** Is this archive an age file? The sidecar says; for an archive given by path, its first bytes. */
export async function isEncryptedArchive(raw: ArchiveReader, sidecar: Sidecar | undefined): Promise<boolean> {
  if (sidecar) return isEncrypted(sidecar);
  const head = Buffer.alloc(Math.min(32, raw.size));
  await raw.read(head, 0, head.length, 0);
  return isAgeFile(head);
}

/**
 * The plain zip of `raw`: `raw` itself when it is not encrypted; decrypted when it is and keys are
 * at hand; undefined when it is and there are none and `required` is false. Without keys when
 * they are required: exit 2, saying how to give them.
 */
export async function plainArchive(
  deps: AppDeps,
  raw: ArchiveReader,
  sidecar: Sidecar | undefined,
  options: { required: boolean; what: string; target?: string | undefined },
): Promise<ArchiveReader | undefined> {
  if (!(await isEncryptedArchive(raw, sidecar))) return raw;
  const ring = await keyRing(deps, sidecar?.target ?? options.target);
  if (ring.identities.length === 0 && ring.passphrases.length === 0) {
    if (!options.required) return undefined;
    throw new UsageError(`${options.what} is encrypted: this needs its identity`, {
      hint: 'Give the private key with --identity <file> (as age-keygen writes it), or set BACKUPKIT_IDENTITY_FILE, or encryption.identityFile for the target.',
    });
  }
  const recipients = sidecar && isEncrypted(sidecar) ? sidecar.encryption.recipients : undefined;
  return openDecrypted(raw, ring, recipients, options.what);
}
