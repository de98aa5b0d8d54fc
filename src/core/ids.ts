/** Target names, backup ids and archive file names (contract: "Storage layout and archive"). */

export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** `<target>_<YYYYMMDD>_<HHMMSS>` in UTC, with `_2`, `_3`... for a second backup in the same second. */
export const BACKUP_ID = /^([A-Za-z0-9][A-Za-z0-9_-]{0,63})_(\d{8})_(\d{6})(?:_(\d+))?$/;

export function baseId(target: string, when: Date): string {
  const iso = when.toISOString(); // 2026-11-21T02:00:00.000Z
  const day = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `${target}_${day}_${time}`;
}

/** The first id for `target` at `when` that is not in `taken`. */
export function nextId(target: string, when: Date, taken: (id: string) => boolean): string {
  const base = baseId(target, when);
  if (!taken(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}_${n}`;
    if (!taken(candidate)) return candidate;
  }
}

export function archiveFileName(id: string): string {
  return `${id}.zip`;
}

export function sidecarFileName(id: string): string {
  return `${id}.json`;
}

/** A ref given by path: contains a `/` or ends in `.zip`. */
export function isPathRef(ref: string): boolean {
  return ref.includes('/') || ref.endsWith('.zip') || ref.endsWith('.zip.age');
}
