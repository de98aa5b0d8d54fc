/**
 * Per-target locks: `.locks/<target>.lock`, created exclusively, holding the owner's pid, host, pid
 * namespace and start time, and touched every REFRESH_MS while held. A lock whose owner is gone is
 * stale and taken over: on this host and in this pid namespace, when its pid is dead or reused;
 * anywhere else (another host on a shared folder, another container with the same host name, a
 * container restarted since), when it has not been touched for STALE_MS. A live one makes the run
 * fail with exit 4. Locks written before they were touched are judged by host and pid alone.
 */
import { link, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LockedError } from '../core/errors.js';
import { isProcessAlive, pidIsOurs, pidSpace, processStartTicks } from './process.js';

interface LockInfo {
  pid: number;
  host: string;
  /** The boot and pid namespace the pid belongs to (see pidSpace); absent in older locks. */
  space?: string | null;
  startTicks: string | null;
  command: string;
  since: string;
}

export interface Lock {
  release(): Promise<void>;
}

export const REFRESH_MS = 30_000;
export const STALE_MS = 150_000;

export async function acquireLock(storageRoot: string, target: string, command: string, now: Date): Promise<Lock> {
  const dir = path.join(storageRoot, '.locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${target}.lock`);
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    space: pidSpace(),
    startTicks: processStartTicks(process.pid) ?? null,
    command,
    since: now.toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written in full beside the lock, then linked into place: the lock never exists half-written.
    const temp = `${file}.${process.pid}`;
    try {
      await writeFile(temp, JSON.stringify(info), { mode: 0o600 });
      await link(temp, file);
      const timer = setInterval(() => {
        const now = new Date();
        utimes(file, now, now).catch(() => undefined);
      }, REFRESH_MS);
      timer.unref();
      return {
        release: () => {
          clearInterval(timer);
          return rm(file, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await rm(temp, { force: true });
    }
    const holder = await readHolder(file);
    if (holder && isLive(holder)) {
      throw new LockedError(
        `target ${target} is locked by a running ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.since})`,
        {
          hint: pidIsOurs(holder)
            ? 'Wait for it to finish.'
            : holder.space === undefined
              ? `Wait for it to finish; if that host is gone, remove ${file}.`
              : `Wait for it to finish. A lock not refreshed for ${STALE_MS / 1000} s is taken over by the next run.`,
        },
      );
    }
    await rm(file, { force: true });
  }
  throw new LockedError(`target ${target}: could not take the lock ${file}`);
}

async function readHolder(file: string): Promise<(LockInfo & { touched: number }) | undefined> {
  try {
    const [text, stats] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { ...(JSON.parse(text) as LockInfo), touched: stats.mtimeMs };
  } catch {
    // Unreadable (or gone): damaged, so nobody can be shown to hold it.
    return undefined;
  }
}

function isLive(holder: LockInfo & { touched: number }): boolean {
  if (!pidIsOurs(holder)) return holder.space === undefined || Date.now() - holder.touched < STALE_MS;
  if (!isProcessAlive(holder.pid)) return false;
  const ticks = processStartTicks(holder.pid);
  return holder.startTicks === null || ticks === undefined || ticks === holder.startTicks;
}
