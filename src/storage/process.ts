/** Is a process alive, and is it still the one that wrote a lock (not a reused pid)? */
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot (Linux), to tell a reused pid apart. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

let space: string | null | undefined;
/**
 * Where this process's pid means something: the kernel's boot id and the pid namespace (Linux).
 * Containers can share a host name (host networking, a fixed `hostname:`) but not a pid
 * namespace, so a pid written by another one says nothing here.
 */
export function pidSpace(): string | null {
  if (space === undefined) {
    try {
      space = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()} ${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      space = null;
    }
  }
  return space;
}

/**
 * Is a lock's pid one this process can check: written on this host, in this pid space? A lock
 * written before locks recorded their pid space counts as this host's when the host name matches.
 */
export function pidIsOurs(holder: { host: string; space?: string | null }): boolean {
  if (holder.host !== os.hostname()) return false;
  return holder.space === undefined || holder.space === pidSpace();
}
