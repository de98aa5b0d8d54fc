/** backupkit's S3 storage and configs pointed at the S3 test server. */
import { S3Storage } from '../../src/storage/s3.js';
import type { S3TestServer } from './s3server.js';

/** Small parts (S3's minimum), so that a few MiB already make a multipart upload. */
export function s3Storage(server: S3TestServer, prefix: string, extra: Partial<ConstructorParameters<typeof S3Storage>[0]> = {}): S3Storage {
  return new S3Storage({
    name: 'offsite',
    bucket: server.bucket,
    prefix,
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    sessionToken: undefined,
    partSize: 5 << 20,
    queueSize: 2,
    retention: undefined,
    ...extra,
  });
}


/** The `storages` entry of a config for the test server, under `prefix`. */
export function s3StorageConfig(server: S3TestServer, prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 's3',
    bucket: server.bucket,
    prefix,
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    accessKeyId: '${S3_KEY_ID}',
    secretAccessKey: '${S3_SECRET}',
    partSize: 5 << 20,
    ...extra,
  };
}

/** The environment that fills s3StorageConfig's credentials. */
export function s3Env(server: S3TestServer): Record<string, string> {
  return { S3_KEY_ID: server.accessKeyId, S3_SECRET: server.secretAccessKey };
}
