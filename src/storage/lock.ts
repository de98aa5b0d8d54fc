/**
 * Per-target locks: `.locks/<target>.lock`, created exclusively, holding the owner's pid, host and
 * start time. A lock whose owner is gone (same host and pid namespace, pid dead or reused) is stale
 * and taken over; a live one makes the run fail with exit 4. Another host's, or another container's
 * with the same host name, is never judged from here.
 */
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
      return { release: () => rm(file, { force: true }) };
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
            : `Wait for it to finish; if that ${holder.host === os.hostname() ? 'process (in another container)' : 'host'} is gone, remove ${file}.`,
        },
      );
    }
    await rm(file, { force: true });
  }
  throw new LockedError(`target ${target}: could not take the lock ${file}`);
}

async function readHolder(file: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockInfo;
  } catch {
    // Unreadable: damaged, so nobody can be shown to hold it.
    return undefined;
  }
}

function isLive(holder: LockInfo): boolean {
  if (!pidIsOurs(holder)) return true;
  if (!isProcessAlive(holder.pid)) return false;
  const ticks = processStartTicks(holder.pid);
  return holder.startTicks === null || ticks === undefined || ticks === holder.startTicks;
}
