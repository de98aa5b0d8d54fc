/**
 * Names of the scratch databases `verify --deep` restores into. A name says who made it and when,
 * so that a later run on any host can tell a dead run's scratch from a live one's and drop it:
 *
 *   bk_verify_<target>_<host>_<pid>_<time>_<random>
 *
 * <target> is the target's name in lower case, `-` as `_`, cut to 16 characters (for messages; the
 * parts after it are what count); <host> is 4 base-36 characters of a hash of the host name; <pid>
 * the process id and <time> the start in seconds since 1970, both base 36; <random> 4 base-36
 * characters. At most 52 characters of [a-z0-9_]: a valid name on PostgreSQL (63 bytes), MySQL and
 * MariaDB (64 characters) and MongoDB (63 bytes, and case-insensitively unique).
 */

export const SCRATCH_PREFIX = 'bk_verify_';
const NAME = /^bk_verify_([a-z0-9_]*)_([0-9a-z]{4})_([0-9a-z]{1,8})_([0-9a-z]{1,8})_([0-9a-z]{4})$/;

export interface ScratchOwner {
  /** 4 base-36 characters naming the host (`hostTag`). */
  host: string;
  pid: number;
  started: Date;
}

export interface ParsedScratch extends ScratchOwner {
  name: string;
  target: string;
}

/** A short, stable tag for a host name (FNV-1a, base 36): no crypto import in core. */
export function hostTag(hostname: string): string {
  let hash = 0x811c9dc5;
  for (const char of hostname) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return (hash % 36 ** 4).toString(36).padStart(4, '0');
}

export function scratchName(target: string, owner: ScratchOwner, random: number): string {
  const slug = target.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 16);
  const seconds = Math.floor(owner.started.getTime() / 1000);
  const tail = Math.floor(Math.abs(random) * 36 ** 4) % 36 ** 4;
  return `${SCRATCH_PREFIX}${slug}_${owner.host}_${owner.pid.toString(36)}_${seconds.toString(36)}_${tail.toString(36).padStart(4, '0')}`;
}

export function parseScratchName(name: string): ParsedScratch | undefined {
  const match = NAME.exec(name);
  if (!match) return undefined;
  return {
    name,
    target: match[1]!,
    host: match[2]!,
    pid: parseInt(match[3]!, 36),
    started: new Date(parseInt(match[4]!, 36) * 1000),
  };
}

/**
 * Is this scratch left by a run that is gone? On this host: when its process is not alive. From
 * another host (whose processes cannot be seen from here): once it is older than `maxAgeMs`.
 */
export function isStaleScratch(scratch: ParsedScratch, here: { host: string; now: Date; maxAgeMs: number; alive: (pid: number) => boolean }): boolean {
  if (scratch.host === here.host && !here.alive(scratch.pid)) return true;
  return here.now.getTime() - scratch.started.getTime() > here.maxAgeMs;
}
