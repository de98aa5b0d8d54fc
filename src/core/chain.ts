/**
 * Differential backups and their bases, across storages. A differential backup restores only
 * with its base (the full backup holding the files it does not), read from any storage that
 * holds it; so a base may go from one storage only while another still holds it, or once no
 * backup that stays needs it. Pure: the callers list the storages.
 */

/** One copy of a backup in one storage, as far as the chain is concerned. */
export interface HeldCopy {
  id: string;
  storage: string;
  /** The full backup it needs, for a differential one. */
  base?: string | undefined;
}

/** A base that would be gone from every storage while backups that stay still need it. */
export interface BrokenBase {
  base: string;
  /** The backups left without it, each once, in the order first seen. */
  dependents: string[];
}

/** The ids of the backups (in any storage) that need `base`, each once. */
export function dependentsOf(base: string, held: readonly HeldCopy[]): string[] {
  return [...new Set(held.filter((copy) => copy.base === base && copy.id !== base).map((copy) => copy.id))];
}

/**
 * What removing the copies `removing` from `held` would break: each base of which no copy would be
 * left while a backup that is left (in any storage) needs it. Empty: nothing breaks.
 */
export function brokenBases(held: readonly HeldCopy[], removing: readonly HeldCopy[]): BrokenBase[] {
  const key = (copy: HeldCopy) => `${copy.storage}\0${copy.id}`;
  const gone = new Set(removing.map(key));
  const left = held.filter((copy) => !gone.has(key(copy)));
  const leftIds = new Set(left.map((copy) => copy.id));
  const broken = new Map<string, string[]>();
  for (const copy of left) {
    if (copy.base === undefined || leftIds.has(copy.base) || !removing.some((r) => r.id === copy.base)) continue;
    const dependents = broken.get(copy.base) ?? [];
    if (!dependents.includes(copy.id)) dependents.push(copy.id);
    broken.set(copy.base, dependents);
  }
  return [...broken].map(([base, dependents]) => ({ base, dependents }));
}

/**
 * What copy sends, in order: `wanted`, with each base a wanted backup needs taken from `source`
 * when the destination lacks it, every base before the backups that need it. `missing`: bases
 * neither the destination nor `source` holds.
 */
export function withBases<T extends { id: string; base?: string | undefined }>(
  wanted: readonly T[],
  source: readonly T[],
  present: ReadonlySet<string>,
): { order: T[]; missing: { id: string; base: string }[] } {
  const byId = new Map(source.map((s) => [s.id, s]));
  const bases: T[] = [];
  const missing: { id: string; base: string }[] = [];
  for (const item of wanted) {
    if (item.base === undefined || present.has(item.base)) continue;
    const base = byId.get(item.base);
    if (!base) missing.push({ id: item.id, base: item.base });
    else if (!bases.includes(base)) bases.push(base);
  }
  return { order: [...bases, ...wanted.filter((item) => !bases.includes(item))], missing };
}
