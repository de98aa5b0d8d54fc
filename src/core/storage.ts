/**
 * What a storage promises (contract: "Storages"). Local folders and S3 buckets both implement it,
 * and test/contract/storage.contract.ts holds every implementation to the same suite.
 *
 * - A backup exists once both its archive and its sidecar are there. The archive is committed
 *   first, whole; the sidecar is written last. No listing ever shows a backup whose archive is
 *   partial or missing because a run stopped halfway.
 * - An archive being written is invisible to `list` and `ids`, and a writer that dies leaves
 *   nothing that a later `removeLeftovers` of the same target does not clear.
 * - Reads are ranged: restore needs random access into a zip whose central directory comes last,
 *   and nothing is downloaded whole before it is used.
 * - `lock` gives one run at a time per target in this storage, across processes (and, for shared
 *   storages, across hosts).
 */
import type { Readable, Writable } from 'node:stream';
import type { Sidecar } from './manifest.js';
import type { RetentionPolicy } from './retention.js';

export type StorageType = 'local' | 's3';

export interface StoredArchive {
  /** Its file name: <id>.zip, or <id>.zip.age when encrypted. */
  file: string;
  size: number;
  modified: Date;
}

export interface StorageListing {
  /** Every readable sidecar. */
  sidecars: Sidecar[];
  /** Every sidecar object or file by id, readable or not. */
  sidecarIds: Set<string>;
  /** Every committed archive by id, with or without a sidecar. */
  archives: Map<string, StoredArchive>;
  /** Files that look like sidecars but are not, with the reason. */
  skipped: { name: string; reason: string }[];
}

/** Random access to one stored archive. */
export interface ArchiveReader {
  /** For messages: a path, or s3://bucket/key. */
  readonly name: string;
  readonly size: number;
  /** A path on this machine when the archive is a local file (lets a worker thread hash it). */
  readonly localPath: string | undefined;
  /** Read up to `length` bytes at `position` into `buffer` at `offset`; resolves with the count read. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** The bytes [start, end) as a stream. */
  stream(start: number, end: number): Readable;
  close(): Promise<void>;
}

/** A new archive on its way into a storage. */
export interface ArchiveUpload {
  /** Where the archive's bytes go. Its write callback runs once it is done with the chunk. */
  readonly stream: Writable;
  /** The archive's SHA-256 when the upload hashes what it wrote (after `stream` has finished). */
  readonly sha256?: () => string;
  /** Make the finished archive part of the storage (under its final name); the sidecar comes after. */
  commit(): Promise<void>;
  /** Drop everything this upload wrote; safe to call at any point, also after a failure. */
  abort(): Promise<void>;
}

export interface Lock {
  release(): Promise<void>;
}

export interface Storage {
  readonly name: string;
  readonly type: StorageType;
  /** Where it is, for messages: a folder, or s3://bucket/prefix. Never holds a secret. */
  readonly location: string;
  /** This storage's own retention rules, replacing the target's here. */
  readonly retention: RetentionPolicy | undefined;

  /** Create the folder or check the bucket; a storage that cannot be reached fails here. */
  ensure(): Promise<void>;
  /**
   * Is it reachable and writable? Lists it, writes a small probe object and removes it, leaving
   * nothing any listing shows; creates nothing else (a folder that does not exist yet passes when
   * it could be created). Resolves with a one-line detail, a folder's free space included. Stops
   * when `signal` aborts.
   */
  probe(signal: AbortSignal): Promise<string>;
  list(): Promise<StorageListing>;
  readSidecar(id: string): Promise<Sidecar | undefined>;
  /** Ids starting with `prefix` that an archive or a sidecar already uses. */
  idsTaken(prefix: string): Promise<Set<string>>;
  /** Is there a committed archive for `id` (with or without a sidecar)? */
  hasArchive(id: string, file: string): Promise<boolean>;
  createArchive(id: string, file: string, options: { hashInWorker?: boolean }): ArchiveUpload;
  writeSidecar(sidecar: Sidecar): Promise<void>;
  openArchive(id: string, file: string): Promise<ArchiveReader>;
  /**
   * Delete a backup: its archive, then its sidecar; missing pieces are not an error. A run that dies
   * on the way leaves no listed backup without its archive where the storage can help it (a local
   * folder moves the sidecar aside first).
   */
  remove(id: string, file: string): Promise<void>;
  /** Remove what dead runs of `target` left behind (temporary files, unfinished uploads). */
  removeLeftovers(target: string): Promise<string[]>;
  lock(target: string, command: string, now: Date): Promise<Lock>;
  /** A temporary file path for a driver's scratch, when this storage is a local folder. */
  tempPath?(id: string, name: string): string;
}
