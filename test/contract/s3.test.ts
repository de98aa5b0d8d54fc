/**
 * The storage contract for an S3 bucket: the local S3 test server (s3rver with the operations it
 * lacks), or a real service when BACKUPKIT_TEST_S3_URL is set.
 */
import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import os from 'node:os';
import { afterAll, beforeAll } from 'vitest';
import { STALE_MS } from '../../src/storage/s3lock.js';
import { s3Storage } from '../support/s3.js';
import { type S3TestServer, startS3Server } from '../support/s3server.js';
import { storageContract } from './storage.contract.js';

let server: S3TestServer;
let runs = 0;

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

storageContract('S3 bucket', async () => {
  const prefix = `${server.prefix}contract-${++runs}/`;
  const storage = s3Storage(server, prefix);
  const client = server.client();
  return {
    storage,
    async deadRunLeftover(_target, id) {
      await client.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key: `${prefix}${id}.zip` }));
    },
    async leftoversOf(target) {
      const uploads = await server.openUploads(`${prefix}${target}_2`);
      return uploads.map((u) => u.key);
    },
    names: () => server.keys(prefix),
    async staleLock(target) {
      const old = new Date(Date.now() - STALE_MS - 1000).toISOString();
      const info = { token: 'someone-else', pid: 1, host: `${os.hostname()}-elsewhere`, command: 'backup', since: old, refreshed: old };
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}.locks/${target}.lock`, Body: JSON.stringify(info) }));
    },
    async deadPidLock(target, space, ageMs = 0) {
      const fresh = new Date(Date.now() - ageMs).toISOString();
      const info = { token: 'someone-else', pid: 4_194_304 + 17, host: os.hostname(), space, command: 'backup', since: fresh, refreshed: fresh };
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}.locks/${target}.lock`, Body: JSON.stringify(info) }));
    },
    async cleanup() {},
  };
});
