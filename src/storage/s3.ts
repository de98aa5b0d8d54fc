/**
 * An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2) as a storage. Config keys (contract:
 * "Storages"): bucket, prefix, region, endpoint, forcePathStyle, accessKeyId, secretAccessKey,
 * sessionToken, partSize, queueSize, retention. SDK: @aws-sdk/client-s3 and @aws-sdk/lib-storage
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/).
 *
 * Objects: <prefix><id>.zip, <prefix><id>.json (the sidecar), <prefix>.locks/<target>.lock.
 * - An archive streams up as a multipart upload, `partSize` bytes a part with up to `queueSize`
 *   parts in flight: memory is bounded by about partSize x (queueSize + 1), whatever the archive's
 *   size, and nothing is staged on local disk. A multipart upload is invisible until completed;
 *   the sidecar is put only after it, so no listing shows a partial backup.
 * - A failed or interrupted upload is aborted on the server; what a killed run left open is found
 *   by the next run of the target (ListMultipartUploads) and aborted.
 * - Reads are ranged GETs (s3reader.ts).
 * - The SDK retries throttling, 5xx answers and dropped connections with exponential backoff
 *   (`maxAttempts`); what still fails is an OperationError naming the storage, bucket and key.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { BACKUP_ID, sidecarFileName } from '../core/ids.js';
import { type Sidecar, isSidecar } from '../core/manifest.js';
import type { RetentionPolicy } from '../core/retention.js';
import type { ArchiveReader, ArchiveUpload, Lock, Storage, StorageListing } from '../core/storage.js';
import { S3Failure, isMissing, isNotImplemented } from './s3errors.js';
import { acquireS3Lock } from './s3lock.js';
import { openS3Archive } from './s3reader.js';

export interface S3StorageOptions {
  name: string;
  bucket: string;
  prefix: string;
  region: string | undefined;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  sessionToken: string | undefined;
  partSize: number;
  queueSize: number;
  retention: RetentionPolicy | undefined;
  /** Attempts per request, the first included. */
  maxAttempts?: number;
}

export const DEFAULT_PART_SIZE = 8 << 20;
export const DEFAULT_QUEUE_SIZE = 4;
const ARCHIVE_NAME = /^(.+)\.zip(\.age)?$/;
const SIDECAR_READS_AT_ONCE = 16;

export class S3Storage implements Storage {
  readonly type = 's3' as const;
  readonly client: S3Client;

  constructor(readonly options: S3StorageOptions) {
    // The SDK's notice that its releases after January 2027 need Node 22 would go to stderr on
    // every run (and into every cron mail); backupkit's own support is in the README. Set the
    // variable to "false" to see it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: options.region ?? 'us-east-1',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      ...(options.accessKeyId
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey ?? '', ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}) } }
        : {}),
      maxAttempts: options.maxAttempts ?? 5,
      // The archive's SHA-256 is backupkit's own check; the SDK's default CRC trailers and
      // aws-chunked bodies are refused by several S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A request that hangs (a stalled server) is aborted and retried, not waited on forever.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000, throwOnRequestTimeout: true },
    });
  }

  get name(): string {
    return this.options.name;
  }

  get retention(): RetentionPolicy | undefined {
    return this.options.retention;
  }

  get location(): string {
    return `s3://${this.options.bucket}/${this.options.prefix}`;
  }

  key(file: string): string {
    return `${this.options.prefix}${file}`;
  }

  /** Run one SDK call; a failure becomes an S3Failure naming the storage, bucket and key. */
  async call<T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new S3Failure(this.name, this.options.bucket, key, operation, error);
    }
  }

  async ensure(): Promise<void> {
    await this.call('HeadBucket', undefined, () => this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket })));
  }

  async probe(signal: AbortSignal): Promise<string> {
    const { bucket, prefix } = this.options;
    const key = this.key(`.backupkit-probe-${randomBytes(6).toString('hex')}`);
    const send = { abortSignal: signal };
    await this.call('ListObjectsV2', prefix, () => this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }), send));
    await this.call('PutObject', key, () => this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'backupkit probe\n' }), send));
    await this.call('DeleteObject', key, () => this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), send));
    return `${this.location}: listed, wrote and removed a probe object`;
  }

  /** Every object directly under the prefix, with its size and time. */
  private async objects(prefix: string): Promise<{ name: string; size: number; modified: Date }[]> {
    const out: { name: string; size: number; modified: Date }[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('ListObjectsV2', prefix, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        out.push({ name: object.Key.slice(this.options.prefix.length), size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async list(): Promise<StorageListing> {
    const listing: StorageListing = { sidecars: [], sidecarIds: new Set(), archives: new Map(), skipped: [] };
    const sidecarNames: string[] = [];
    for (const object of await this.objects(this.options.prefix)) {
      const archive = ARCHIVE_NAME.exec(object.name);
      if (archive && BACKUP_ID.test(archive[1]!)) listing.archives.set(archive[1]!, { file: object.name, size: object.size, modified: object.modified });
      else if (object.name.endsWith('.json') && BACKUP_ID.test(object.name.slice(0, -5))) {
        listing.sidecarIds.add(object.name.slice(0, -5));
        sidecarNames.push(object.name);
      }
    }
    for (let i = 0; i < sidecarNames.length; i += SIDECAR_READS_AT_ONCE) {
      await Promise.all(
        sidecarNames.slice(i, i + SIDECAR_READS_AT_ONCE).map(async (name) => {
          try {
            const value = JSON.parse((await this.getText(name)) ?? 'null') as unknown;
            if (isSidecar(value)) listing.sidecars.push(value);
            else listing.skipped.push({ name, reason: 'not a backupkit sidecar' });
          } catch (error) {
            if (error instanceof S3Failure) throw error;
            listing.skipped.push({ name, reason: (error as Error).message });
          }
        }),
      );
    }
    return listing;
  }

  private async getText(name: string): Promise<string | undefined> {
    const key = this.key(name);
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return await object.Body!.transformToString('utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw new S3Failure(this.name, this.options.bucket, key, 'GetObject', error);
    }
  }

  async readSidecar(id: string): Promise<Sidecar | undefined> {
    const text = await this.getText(sidecarFileName(id));
    if (text === undefined) return undefined;
    const value: unknown = JSON.parse(text);
    return isSidecar(value) ? value : undefined;
  }

  async idsTaken(prefix: string): Promise<Set<string>> {
    const taken = new Set<string>();
    for (const object of await this.objects(this.key(prefix))) {
      const id = object.name.replace(/\.(zip|zip\.age|json)$/, '');
      if (id !== object.name) taken.add(id);
    }
    return taken;
  }

  async hasArchive(_id: string, file: string): Promise<boolean> {
    const key = this.key(file);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw new S3Failure(this.name, this.options.bucket, key, 'HeadObject', error);
    }
  }

  createArchive(_id: string, file: string): ArchiveUpload {
    return new S3ArchiveUpload(this, this.key(file));
  }

  async writeSidecar(sidecar: Sidecar): Promise<void> {
    const key = this.key(sidecarFileName(sidecar.id));
    await this.call('PutObject', key, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: `${JSON.stringify(sidecar, null, 2)}\n`, ContentType: 'application/json' }),
      ),
    );
  }

  openArchive(_id: string, file: string): Promise<ArchiveReader> {
    return openS3Archive(this, this.key(file));
  }

  async remove(id: string, file: string): Promise<void> {
    for (const key of [this.key(file), this.key(sidecarFileName(id))]) {
      await this.call('DeleteObject', key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key })));
    }
  }

  /** Multipart uploads of `key`'s name (or of any archive of `target`) that nobody completed. */
  async openUploads(match: (key: string) => boolean, prefix: string): Promise<{ key: string; uploadId: string }[]> {
    const out: { key: string; uploadId: string }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.call('ListMultipartUploads', prefix, () =>
        this.client.send(new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId && match(upload.Key)) out.push({ key: upload.Key, uploadId: upload.UploadId });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return out;
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      if (isMissing(error)) return;
      throw new S3Failure(this.name, this.options.bucket, key, 'AbortMultipartUpload', error);
    }
  }

  /**
   * Abort the unfinished uploads of `target`'s archives. The caller holds the target's lock in this
   * storage, so any it finds belong to runs that died. A server without ListMultipartUploads
   * leaves them to the bucket's lifecycle rules.
   */
  async removeLeftovers(target: string): Promise<string[]> {
    const ofTarget = (key: string) => {
      const name = key.slice(this.options.prefix.length);
      const archive = ARCHIVE_NAME.exec(name);
      return Boolean(archive && BACKUP_ID.exec(archive[1]!)?.[1] === target);
    };
    let uploads: { key: string; uploadId: string }[];
    try {
      uploads = await this.openUploads(ofTarget, this.key(`${target}_`));
    } catch (error) {
      if (error instanceof S3Failure && isNotImplemented(error.cause)) return [];
      throw error;
    }
    for (const upload of uploads) await this.abortUpload(upload.key, upload.uploadId);
    return uploads.map((u) => `${u.key} (upload ${u.uploadId})`);
  }

  lock(target: string, command: string, now: Date): Promise<Lock> {
    return acquireS3Lock(this, target, command, now);
  }
}

/**
 * One archive streaming up. Each chunk is copied on its way (the zip writer reuses its buffers
 * once a write has called back), and the write calls back once the upload has room for more, so
 * a slow bucket slows the backup instead of filling memory. `stream` finishes once the object is
 * complete on the server.
 */
class S3ArchiveUpload implements ArchiveUpload {
  readonly stream: Writable;
  private readonly body = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly upload: Upload;
  private readonly done: Promise<unknown>;
  private completed = false;
  private failure: Error | undefined;
  /** The callback of a write waiting for the body to drain: called once, by a drain or by the failure. */
  private waiting: ((error?: Error) => void) | undefined;

  constructor(
    private readonly storage: S3Storage,
    private readonly key: string,
  ) {
    const { bucket, partSize, queueSize } = storage.options;
    this.upload = new Upload({
      client: storage.client,
      params: { Bucket: bucket, Key: key, Body: this.body, ContentType: 'application/zip' },
      partSize,
      queueSize,
      leavePartsOnError: false,
    });
    this.done = this.upload.done().then(
      () => {
        this.completed = true;
      },
      (error: unknown) => {
        this.failure = new S3Failure(storage.name, bucket, key, 'upload', error);
        this.body.destroy();
        this.release(this.failure);
        throw this.failure;
      },
    );
    this.done.catch(() => undefined);
    // A body destroyed after a failure reports nothing new: the failure comes through `done`.
    this.body.on('error', () => undefined);
    const body = this.body;
    const upload = this;
    this.stream = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _encoding, callback) {
        if (upload.failure) return callback(upload.failure);
        if (body.write(Buffer.from(chunk))) return callback();
        upload.waiting = callback;
        body.once('drain', () => upload.release());
      },
      final(callback) {
        body.end();
        upload.done.then(() => callback(), callback);
      },
    });
  }

  private release(error?: Error): void {
    const callback = this.waiting;
    this.waiting = undefined;
    callback?.(error);
  }

  async commit(): Promise<void> {
    await this.done;
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    if (this.completed) {
      await this.storage.call('DeleteObject', this.key, () => this.storage.client.send(new DeleteObjectCommand({ Bucket: this.storage.options.bucket, Key: this.key })));
      return;
    }
    await this.upload.abort();
    this.body.destroy();
    // The SDK aborts the multipart upload once its part uploads have stopped; make sure of it.
    await Promise.race([this.done.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    if (this.completed) {
      await this.storage.call('DeleteObject', this.key, () => this.storage.client.send(new DeleteObjectCommand({ Bucket: this.storage.options.bucket, Key: this.key })));
      return;
    }
    const uploadId = this.upload.uploadId;
    if (uploadId) await this.storage.abortUpload(this.key, uploadId);
  }
}
