/**
 * An S3 upload that fails after some writes waited for the body to drain: the writer sees the
 * storage's own error, once, and nothing is left in the bucket after abort.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Storage } from '../support/s3.js';
import { type S3TestServer, startS3Server } from '../support/s3server.js';

let server: S3TestServer;

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

describe('S3 archive upload', () => {
  it('a part that keeps failing reaches the writer as the storage\'s error, once, after writes that waited on the body', async (ctx) => {
    if (!server.canInjectFaults) ctx.skip();
    const prefix = `${server.prefix}upload-failure/`;
    const storage = s3Storage(server, prefix, { queueSize: 1, maxAttempts: 1 });
    await storage.ensure();
    server.faults.inject({ match: (r) => r.method === 'PUT' && r.query.get('partNumber') === '2', count: 100, action: { status: 500, code: 'InternalError' } });
    try {
      const upload = storage.createArchive('app_20261207_020000', 'app_20261207_020000.zip');
      const errors: Error[] = [];
      upload.stream.on('error', (error) => errors.push(error));
      const chunk = Buffer.alloc(256 << 10, 1);
      /** Write as a zip writer does, the next chunk once the last one's callback has run; did it wait? */
      const write = () =>
        new Promise<{ waited: boolean; error: Error | null | undefined }>((resolve) => {
          let synchronous = true;
          upload.stream.write(chunk, (error) => resolve({ waited: !synchronous, error }));
          synchronous = false;
        });
      // Parts 1 and 2 and a bit more, some writes waiting for the body to drain.
      let waited = 0;
      for (let i = 0; i < 44; i++) {
        const result = await write();
        expect(result.error).toBeFalsy();
        if (result.waited) waited++;
      }
      expect(waited).toBeGreaterThan(0);
      // Part 2 fails while the writer has nothing pending (a dump tool thinking, say).
      await expect(upload.commit()).rejects.toThrow(`s3://${server.bucket}/${prefix}`);
      const after = await write();
      expect(after.error?.message).toContain(`s3://${server.bucket}/${prefix}`);
      expect(errors.map((e) => e.message)).toEqual([after.error!.message]);
      await upload.abort();
      expect(await server.openUploads(prefix)).toEqual([]);
      expect(await server.keys(prefix)).toEqual([]);
    } finally {
      server.faults.clear();
    }
  });
});
