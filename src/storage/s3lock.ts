/**
 * A target's lock in a bucket: the object <prefix>.locks/<target>.lock, shared by every host that
 * writes there.
 * - Taken with a conditional put (If-None-Match: *), which S3 and most compatible servers honour:
 *   of two runs starting at once, exactly one gets it. The owner then reads the lock back and
 *   checks its own token, so on a server that ignores the condition a run that was overwritten
 *   still notices, unless the two puts and reads interleave within a few milliseconds.
 * - Refreshed every REFRESH_MS while the run lasts (a put conditional on the lock's ETag).
 * - A lock not refreshed for STALE_MS (its owner died or lost the bucket), or held by a dead
 *   process on this very host (and pid namespace: containers may share a host name), is taken over: deleted on the condition that it is still that
 *   stale lock, then taken as above. Hosts must keep their clocks roughly right (NTP): staleness is
 *   judged from the time the owner wrote into the lock.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { LockedError } from '../core/errors.js';
import type { Lock } from '../core/storage.js';
import { REFRESH_MS, STALE_MS } from './lock.js';
import { isProcessAlive, pidIsOurs, pidSpace } from './process.js';
import type { S3Storage } from './s3.js';
import { S3Failure, isMissing, isPreconditionFailed } from './s3errors.js';

export { REFRESH_MS, STALE_MS };

interface S3LockInfo {
  token: string;
  pid: number;
  host: string;
  /** The boot and pid namespace the pid belongs to (see pidSpace); absent in older locks. */
  space?: string | null;
  command: string;
  since: string;
  refreshed: string;
}

export async function acquireS3Lock(storage: S3Storage, target: string, command: string, now: Date, clock: () => Date = () => new Date()): Promise<Lock> {
  const { bucket } = storage.options;
  const key = storage.key(`.locks/${target}.lock`);
  const info: S3LockInfo = { token: randomUUID(), pid: process.pid, host: os.hostname(), space: pidSpace(), command, since: now.toISOString(), refreshed: now.toISOString() };

  const put = async (condition: { IfNoneMatch: string } | { IfMatch: string }): Promise<string | undefined> => {
    try {
      const out = await storage.client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(info), ContentType: 'application/json', ...condition }),
      );
      return out.ETag ?? '';
    } catch (error) {
      if (isPreconditionFailed(error) || (error as { name?: string }).name === 'ConditionalRequestConflict') return undefined;
      throw new S3Failure(storage.name, bucket, key, 'PutObject', error);
    }
  };
  const read = async (): Promise<{ holder: S3LockInfo | undefined; etag: string | undefined } | undefined> => {
    try {
      const out = await storage.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const text = await out.Body!.transformToString('utf8');
      let holder: S3LockInfo | undefined;
      try {
        holder = JSON.parse(text) as S3LockInfo;
      } catch {
        holder = undefined;
      }
      return { holder, etag: out.ETag };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw new S3Failure(storage.name, bucket, key, 'GetObject', error);
    }
  };

  for (let attempt = 0; attempt < 3; attempt++) {
    let etag = await put({ IfNoneMatch: '*' });
    if (etag !== undefined) {
      const check = await read();
      if (check?.holder?.token === info.token) {
        etag = check.etag ?? etag;
        return holdLock(storage, key, info, etag, put, clock);
      }
    }
    const current = await read();
    if (!current) continue;
    const { holder } = current;
    if (holder && isLive(holder, clock())) {
      throw new LockedError(`target ${target} is locked in storage ${storage.name} by a running ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.since})`, {
        hint: `Wait for it to finish. A lock not refreshed for ${STALE_MS / 1000} s is taken over by the next run.`,
      });
    }
    // Stale or unreadable: remove it, if it is still the one just read.
    try {
      await storage.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, ...(current.etag ? { IfMatch: current.etag } : {}) }));
    } catch (error) {
      if (!isPreconditionFailed(error) && !isMissing(error)) throw new S3Failure(storage.name, bucket, key, 'DeleteObject', error);
    }
  }
  throw new LockedError(`target ${target}: could not take the lock ${storage.location}.locks/${target}.lock`);
}

function isLive(holder: S3LockInfo, now: Date): boolean {
  if (pidIsOurs(holder) && !isProcessAlive(holder.pid)) return false;
  const refreshed = Date.parse(holder.refreshed);
  return Number.isFinite(refreshed) && now.getTime() - refreshed < STALE_MS;
}

function holdLock(
  storage: S3Storage,
  key: string,
  info: S3LockInfo,
  firstEtag: string,
  put: (condition: { IfMatch: string }) => Promise<string | undefined>,
  clock: () => Date,
): Lock {
  let etag = firstEtag;
  let refreshing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    refreshing = (async () => {
      info.refreshed = clock().toISOString();
      const next = await put({ IfMatch: etag });
      if (next === undefined) throw new Error('another run took the lock over');
      etag = next;
    })().catch(() => {
      // A refresh that fails leaves the lock to go stale; the run itself goes on.
    });
  }, REFRESH_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await refreshing;
      try {
        await storage.client.send(new DeleteObjectCommand({ Bucket: storage.options.bucket, Key: key, IfMatch: etag }));
      } catch (error) {
        if (!isPreconditionFailed(error) && !isMissing(error)) throw new S3Failure(storage.name, storage.options.bucket, key, 'DeleteObject', error);
      }
    },
  };
}
