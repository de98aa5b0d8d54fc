/**
 * export: one backup's archive written to a path or a stream (stdout), its SHA-256 checked as it
 * goes (contract: `export <ref> <dest>`). A file is written under a temporary name beside the
 * destination and renamed once its bytes are checked, so a damaged archive leaves no file there.
 * With `decrypt`, an encrypted backup's stored file is checked first, then its plain zip is
 * written, every 64 KiB chunk authenticated as it is decrypted; nothing else is written to disk.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OperationError, UsageError, VerificationError } from '../core/errors.js';
import { isEncrypted } from '../core/manifest.js';
import type { ArchiveReader } from '../core/storage.js';
import { HashCounter } from '../pipeline/hash.js';
import { hashArchive } from '../pipeline/verify.js';
import type { AppDeps } from './deps.js';
import { plainArchive } from './keys.js';
import { resolveRef } from './refs.js';

export type ExportDest = { kind: 'file'; path: string } | { kind: 'stream'; stream: Writable };

export interface ExportResult {
  id: string;
  /** The file written, or "-" for a stream. */
  dest: string;
  bytes: number;
  /** Of the bytes written: the stored archive's (the sidecar's), or the plain zip's with `decrypted`. */
  sha256: string;
  decrypted: boolean;
}

export async function exportBackup(deps: AppDeps, ref: string, dest: ExportDest, options: { target: string | undefined; decrypt: boolean }): Promise<ExportResult> {
  const resolved = await resolveRef(deps, ref, options.target);
  const { sidecar } = resolved;
  if (!sidecar) throw new UsageError(`${resolved.name} has no sidecar beside it: its SHA-256 cannot be checked`, { hint: 'Export a backup by its id, or copy the file as it is.' });
  const archive = await resolved.open();
  try {
    if (archive.size !== sidecar.archive.size) {
      throw new VerificationError(`${sidecar.id}: the archive is ${archive.size} bytes, its sidecar says ${sidecar.archive.size}; nothing was exported`);
    }
    const decrypt = options.decrypt && isEncrypted(sidecar);
    if (options.decrypt && !decrypt) deps.log.info(`${sidecar.id} is not encrypted: its archive is the plain zip`);
    let source: ArchiveReader = archive;
    if (decrypt) {
      source = (await plainArchive(deps, archive, sidecar, { required: true, what: sidecar.id }))!;
      deps.progress.start(`checking ${sidecar.id}`, archive.size);
      const { sha256 } = await hashArchive(archive, (n) => deps.progress.bytes(n), false).finally(() => deps.progress.stop());
      if (sha256 !== sidecar.archive.sha256) throw new VerificationError(`${sidecar.id}: archive checksum mismatch: SHA-256 ${sha256}, expected ${sidecar.archive.sha256}; nothing was exported`);
    }
    const file = decrypt ? `${sidecar.id}.zip` : sidecar.archive.file;
    const check = (hash: HashCounter) => {
      if (decrypt) return;
      const digest = hash.digest();
      if (hash.bytes !== sidecar.archive.size || digest !== sidecar.archive.sha256) {
        throw new VerificationError(`${sidecar.id}: read ${hash.bytes} bytes with SHA-256 ${digest}, its sidecar says ${sidecar.archive.size} bytes, ${sidecar.archive.sha256}`);
      }
    };
    deps.progress.start(`exporting ${sidecar.id}`, source.size);
    try {
      const hash = new HashCounter((n) => deps.progress.bytes(n));
      const input = source.stream(0, source.size);
      if (dest.kind === 'stream') {
        await writeTo(input, hash, dest.stream, deps.signal);
        check(hash);
        return { id: sidecar.id, dest: '-', bytes: hash.bytes, sha256: decrypt ? hash.digest() : sidecar.archive.sha256, decrypted: decrypt };
      }
      const target = await destPath(dest.path, file);
      const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.export`);
      try {
        await pipeline(input, hash, createWriteStream(temp, { mode: 0o600 }), { signal: deps.signal });
        check(hash);
        const handle = await open(temp, 'r');
        await handle.sync().finally(() => handle.close());
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        throw deps.signal.aborted ? deps.signal.reason : error;
      }
      return { id: sidecar.id, dest: target, bytes: hash.bytes, sha256: decrypt ? hash.digest() : sidecar.archive.sha256, decrypted: decrypt };
    } finally {
      deps.progress.stop();
    }
  } finally {
    await archive.close();
  }
}

/** A destination folder takes the archive's own name. */
async function destPath(dest: string, file: string): Promise<string> {
  const resolved = path.resolve(dest);
  const info = await stat(resolved).catch(() => undefined);
  if (info?.isDirectory()) return path.join(resolved, file);
  const parent = await stat(path.dirname(resolved)).catch(() => undefined);
  if (!parent?.isDirectory()) throw new UsageError(`export: the folder ${path.dirname(resolved)} does not exist`);
  return resolved;
}

/**
 * Write `input` through `hash` into `out` without ending it (stdout stays open), waiting for it to
 * drain. A reader that goes away (a broken pipe) fails the export: the bytes did not arrive.
 */
async function writeTo(input: Readable, hash: HashCounter, out: Writable, signal: AbortSignal): Promise<void> {
  let failed: Error | undefined;
  const onError = (error: Error) => (failed ??= error);
  out.on('error', onError);
  try {
    const hashed = input.pipe(hash);
    input.once('error', (error) => hashed.destroy(error));
    for await (const chunk of hashed as AsyncIterable<Buffer>) {
      if (signal.aborted) throw signal.reason;
      if (failed) break;
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'error')]).catch(() => undefined);
    }
    // Wait until what was written has been handed on (or has failed).
    if (!failed) await new Promise<void>((resolve) => out.write('', () => resolve()));
    if (failed) throw new OperationError(`the output stream failed: ${failed.message}`, { cause: failed });
  } finally {
    out.off('error', onError);
  }
}
