/**
 * Folder trees that change from day to day, as an uploads folder does: a seeded generator of small
 * files in nested folders (with modes, mtimes to the millisecond and symlinks), the changes a day
 * brings (files added, rewritten, deleted, moved, chmod-ed, replaced by a symlink or a folder), a
 * copy of a day's tree to compare a restore with, and the comparison itself.
 */
import { chmodSync, cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** mulberry32: the same tree for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Tree {
  private readonly random: () => number;
  private serial = 0;
  /** Files (not symlinks) written, rewritten, moved or chmod-ed since `markFull`. */
  readonly dirty = new Set<string>();

  constructor(
    readonly root: string,
    seed: number,
  ) {
    this.random = prng(seed);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  /** Regular files, relative to the root, sorted. */
  files(): string[] {
    return walk(this.root).filter((e) => e.kind === 'file').map((e) => e.rel);
  }

  dirs(): string[] {
    return walk(this.root).filter((e) => e.kind === 'dir').map((e) => e.rel);
  }

  /** A file of 0-3 KiB (text or binary) with a given mtime. */
  write(rel: string, when: Date): void {
    const full = path.join(this.root, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    const size = Math.floor(this.random() * 3072);
    const data = Buffer.alloc(size);
    const binary = this.random() < 0.3;
    for (let i = 0; i < size; i++) data[i] = binary ? Math.floor(this.random() * 256) : 97 + Math.floor(this.random() * 26);
    if (!binary && size > 0) data.write(`${rel} #${++this.serial}\n`);
    writeFileSync(full, data);
    chmodSync(full, this.pick([0o644, 0o644, 0o600, 0o755, 0o640]));
    utimesSync(full, when, when);
    this.dirty.add(rel);
  }

  /** `count` files in `folders` folders (some nested), a few symlinks and an empty folder. */
  create(count: number, folders: number, when: Date): void {
    const names = Array.from({ length: folders }, (_, i) => (i % 4 === 3 ? `d${i - 1}/sub${i}` : `d${i}`));
    for (let i = 0; i < count; i++) this.write(`${this.pick(names)}/f${i}.${this.pick(['txt', 'bin', 'json', 'jpg'])}`, this.at(when, i));
    mkdirSync(path.join(this.root, 'empty'), { recursive: true });
    const files = this.files();
    for (let i = 0; i < 5; i++) {
      const target = this.pick(files);
      const link = `${path.dirname(target)}/link${i}`;
      symlinkSync(path.basename(target), path.join(this.root, link));
    }
  }

  /** One day's changes, all dated `when` (moved files keep their mtime, as `mv` does). */
  change(when: Date, n: { rewrite?: number; add?: number; remove?: number; chmod?: number; move?: number; toSymlink?: number; toFolder?: number; dropFolder?: boolean }): void {
    let files = this.files();
    const take = (k: number) => {
      const out: string[] = [];
      while (out.length < k && files.length > 0) {
        const f = files.splice(Math.floor(this.random() * files.length), 1)[0]!;
        out.push(f);
      }
      return out;
    };
    take(n.rewrite ?? 0).forEach((f, i) => this.write(f, this.at(when, i)));
    for (const f of take(n.remove ?? 0)) {
      rmSync(path.join(this.root, f));
      this.dirty.delete(f);
    }
    for (const f of take(n.chmod ?? 0)) {
      // Along a cycle no file starts on, so two changes never lead back to the mode of the full backup.
      const cycle = [0o600, 0o660, 0o604, 0o664, 0o606];
      const mode = lstatSync(path.join(this.root, f)).mode & 0o777;
      chmodSync(path.join(this.root, f), cycle[(cycle.indexOf(mode) + 1) % cycle.length]!);
      this.dirty.add(f);
    }
    for (const f of take(n.move ?? 0)) {
      const to = `moved/${path.basename(f)}`;
      mkdirSync(path.join(this.root, 'moved'), { recursive: true });
      renameSync(path.join(this.root, f), path.join(this.root, to));
      this.dirty.delete(f);
      this.dirty.add(to);
    }
    for (const f of take(n.toSymlink ?? 0)) {
      rmSync(path.join(this.root, f));
      symlinkSync(path.basename(files[0] ?? 'missing'), path.join(this.root, f));
      this.dirty.delete(f);
    }
    for (const f of take(n.toFolder ?? 0)) {
      rmSync(path.join(this.root, f));
      this.dirty.delete(f);
      this.write(`${f}/inside.txt`, when);
    }
    if (n.dropFolder) {
      const folder = this.pick(this.dirs().filter((d) => !d.includes('/') && d !== 'moved' && d !== 'empty'));
      rmSync(path.join(this.root, folder), { recursive: true });
      for (const f of [...this.dirty]) if (f.startsWith(`${folder}/`)) this.dirty.delete(f);
    }
    for (let i = 0; i < (n.add ?? 0); i++) this.write(`new-${when.toISOString().slice(0, 10)}/${this.pick(['a', 'b/c'])}/n${i}.txt`, this.at(when, i));
  }

  /** A full backup was made: nothing is dirty against it. */
  markFull(): void {
    this.dirty.clear();
  }

  /** Copy the tree as it is now (modes, mtimes and symlinks kept). */
  snapshot(to: string): void {
    cpSync(this.root, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }

  private at(day: Date, i: number): Date {
    return new Date(day.getTime() + i * 7919 + (i % 1000));
  }
}

interface Walked {
  rel: string;
  kind: 'file' | 'dir' | 'symlink';
}

function walk(root: string, rel = ''): Walked[] {
  const out: Walked[] = [];
  for (const name of readdirSync(path.join(root, rel)).sort()) {
    const child = rel ? `${rel}/${name}` : name;
    const st = lstatSync(path.join(root, child));
    if (st.isDirectory()) {
      out.push({ rel: child, kind: 'dir' });
      out.push(...walk(root, child));
    } else {
      out.push({ rel: child, kind: st.isSymbolicLink() ? 'symlink' : 'file' });
    }
  }
  return out;
}

/**
 * How `actual` differs from `expected`: paths missing or extra, kinds, and for files their bytes,
 * mode and mtime (to the millisecond, as manifests keep it); for symlinks their target; for folders
 * their mode. Empty when they are the same.
 */
export function treeDifferences(expected: string, actual: string): string[] {
  const a = new Map(walk(expected).map((e) => [e.rel, e.kind]));
  const b = new Map(walk(actual).map((e) => [e.rel, e.kind]));
  const out: string[] = [];
  for (const [rel, kind] of a) {
    const other = b.get(rel);
    if (!other) {
      out.push(`missing ${kind} ${rel}`);
      continue;
    }
    if (other !== kind) {
      out.push(`${rel}: ${other}, expected ${kind}`);
      continue;
    }
    const x = path.join(expected, rel);
    const y = path.join(actual, rel);
    const sx = lstatSync(x);
    const sy = lstatSync(y);
    if (kind === 'symlink') {
      if (readlinkSync(x) !== readlinkSync(y)) out.push(`${rel}: links to ${readlinkSync(y)}, expected ${readlinkSync(x)}`);
      continue;
    }
    if ((sx.mode & 0o7777) !== (sy.mode & 0o7777)) out.push(`${rel}: mode ${(sy.mode & 0o7777).toString(8)}, expected ${(sx.mode & 0o7777).toString(8)}`);
    if (kind === 'dir') continue;
    if (sx.mtime.getTime() !== sy.mtime.getTime()) out.push(`${rel}: mtime ${sy.mtime.toISOString()}, expected ${sx.mtime.toISOString()}`);
    if (!readFileSync(x).equals(readFileSync(y))) out.push(`${rel}: other bytes`);
  }
  for (const [rel, kind] of b) if (!a.has(rel)) out.push(`extra ${kind} ${rel}`);
  return out;
}
