/**
 * Truncated, corrupted and hostile archives given by path to verify, restore (--force, into a
 * SQLite target with files) and inspect: zip-slip names (`..`, absolute paths, backslashes),
 * symlinks pointing outside, huge declared sizes, duplicate entries, a manifest that lies or is
 * not a manifest, a deflate bomb, random byte flips and truncations of a real archive. Each must
 * fail with exit 3 and write nothing: the target's database and folder, a sentinel folder beside
 * them and everything else under the test's root stay as they were. Fixed seeds, bounded runs.
 */
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupTargets } from '../../src/app/backup.js';
import type { AppDeps } from '../../src/app/deps.js';
import { inspectBackup } from '../../src/app/inspect.js';
import { restoreBackup } from '../../src/app/restore.js';
import { verifyBackups } from '../../src/app/verify.js';
import { ExitCode, exitCodeOf } from '../../src/core/errors.js';
import { ZipReader } from '../../src/pipeline/zipreader.js';
import { appDeps, testClock } from '../support/app.js';
import { runCli } from '../support/cli.js';
import { type HostileEntry, S_IFDIR, S_IFLNK, S_IFREG, hostileZip } from '../support/hostilezip.js';
import { makeFiles, makeSqlite } from '../support/sqlitedb.js';

const SEED = 4_2026;
const bounded = (numRuns: number, ms: number) => ({ seed: SEED, numRuns, plugins: [fc.interruptAfterTimeLimit(ms)] });
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

let root: string;
let work: string;
let sentinel: string;
let configFile: string;
let deps: AppDeps;
let realArchive: string;
let realSidecar: string;
let realEntries: HostileEntry[];
let realManifest: Record<string, any>;
let manifestCompressedSize: number;
let pristine: string;
let runs = 0;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'backupkit-fuzz-'));
  work = path.join(root, 'work');
  sentinel = path.join(root, 'sentinel');
  for (const dir of [work, sentinel, path.join(root, 'target')]) mkdirSync(dir);
  makeSqlite(path.join(root, 'target', 'app.sqlite'), 30);
  makeFiles(path.join(root, 'target', 'uploads'));
  // Fixed times throughout, so that the archive's layout, and with it each seed's run, repeats.
  const when = new Date('2025-03-04T05:06:07Z');
  lutimesSync(path.join(root, 'target', 'uploads', 'link-to-top'), when, when);
  pristine = path.join(os.tmpdir(), `${path.basename(root)}-pristine`);
  cpSync(path.join(root, 'target'), pristine, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const raw = { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './target/app.sqlite', files: ['./target/uploads'] } } };
  configFile = path.join(root, 'backupkit.config.json');
  writeFileSync(configFile, JSON.stringify(raw));
  deps = appDeps(configFile, raw, testClock('2026-11-21T02:00:00Z'));
  const { backups, failures } = await backupTargets(deps, ['app'], { parts: ['db', 'files'], tags: [], note: null });
  expect(failures).toEqual([]);
  realArchive = path.join(root, 'store', backups[0]!.file);
  realSidecar = path.join(root, 'store', `${backups[0]!.id}.json`);
  const reader = await ZipReader.open(realArchive);
  try {
    realEntries = [];
    for (const info of reader.entries.values()) {
      if (info.name === 'manifest.json') continue;
      const chunks: Buffer[] = [];
      if (info.type !== 'directory') for await (const chunk of await reader.open(info.name)) chunks.push(chunk as Buffer);
      const type = info.type === 'symlink' ? S_IFLNK : info.type === 'directory' ? S_IFDIR : S_IFREG;
      realEntries.push({ name: info.name, data: Buffer.concat(chunks), mode: type | (info.mode ?? 0o644), method: info.name.startsWith('db/') ? 8 : 0 });
    }
    realManifest = JSON.parse(await reader.readText('manifest.json'));
    manifestCompressedSize = reader.entries.get('manifest.json')!.compressedSize;
  } finally {
    reader.close();
  }
}, 60_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  if (pristine) rmSync(pristine, { recursive: true, force: true });
});

/** Every file under the root but the work folder and history: paths, types, contents and link targets. */
function snapshot(dir = root, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const relName = rel ? `${rel}/${name}` : name;
    if (relName === 'work' || relName === 'store/history.jsonl') continue;
    const full = path.join(dir, name);
    const st = lstatSync(full);
    if (st.isSymbolicLink()) out.push(`${relName} -> ${readlinkSync(full)}`);
    else if (st.isDirectory()) out.push(`${relName}/`, ...snapshot(full, relName));
    else out.push(`${relName} ${sha256(readFileSync(full))}`);
  }
  return out;
}

/** The target as it was before any run. */
function resetTarget(): void {
  rmSync(path.join(root, 'target'), { recursive: true, force: true });
  cpSync(pristine, path.join(root, 'target'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
}

function restore(ref: string) {
  return restoreBackup(deps, 'app', {
    ref,
    only: undefined,
    into: undefined,
    dryRun: false,
    snapshot: false,
    yes: true,
    force: true,
    flush: false,
    interactive: false,
    confirm: async () => true,
  });
}

/** The exit code a run's error maps to; 0 when it succeeded. */
async function exitOf(run: Promise<unknown>): Promise<number> {
  return run.then(
    () => ExitCode.ok,
    (error: unknown) => exitCodeOf(error),
  );
}

async function verifyCode(file: string): Promise<number> {
  const { outcomes } = await verifyBackups(deps, [file], { target: undefined });
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!.ok ? ExitCode.ok : outcomes[0]!.code;
}

// ---- hostile archives ----

interface Hostile {
  entries: HostileEntry[];
  manifest: unknown;
  /** Found from the structure and the manifest alone (inspect sees it); else only by reading the data. */
  structural: boolean;
  what: string[];
}

type Feature = (h: Hostile) => void;

function listEntry(h: Hostile, name: string, data: Buffer): void {
  (h.manifest as { entries: unknown[] }).entries.push({ path: name, size: data.length, sha256: sha256(data), mode: 0o644, mtime: '2026-01-01T00:00:00.000Z' });
}

/** Names that would land outside the folder they are restored to, aimed at the sentinel. */
const slipName = fc.constantFrom(
  '../escaped.txt',
  'files/0/../../../sentinel/slip.txt',
  'files/0/../escaped.txt',
  'files/0/./../../../sentinel/dot.txt',
  'files/0//../../../sentinel/double.txt',
  'db/../../sentinel/db.txt',
  'files/1/../../sentinel/other.txt',
  'files\\0\\..\\..\\..\\sentinel\\backslash.txt',
  'files/0/a\\..\\..\\..\\..\\sentinel\\mixed.txt',
  'C:\\sentinel\\drive.txt',
  'C:/sentinel/drive.txt',
  '/SENTINEL/absolute.txt',
);

const slip: fc.Arbitrary<Feature> = fc.tuple(slipName, fc.uint8Array({ maxLength: 64 })).map(([name, bytes]) => (h) => {
  const data = Buffer.from(bytes);
  const real = name.replace('/SENTINEL', sentinel);
  h.entries.push({ name: real, data });
  listEntry(h, real, data);
  h.what.push(`slip ${real}`);
});

/** A symlink under files/0/ whose target resolves outside files/0/, and maybe a file written through it. */
const symlinkOut: fc.Arbitrary<Feature> = fc
  .tuple(fc.constantFrom('link', 'a/link', 'a/b/link'), fc.constantFrom('..', '../..', '../../..', '../../../sentinel', '/SENTINEL', '/', 'x/../../../../..'), fc.boolean())
  .filter(([at, target]) => {
    if (target.startsWith('/')) return true;
    const rel = path.posix.relative('/r', path.posix.resolve('/r', path.posix.dirname(at), target));
    return rel.startsWith('..');
  })
  .map(([at, target, through]) => (h) => {
    const name = `files/0/${at}`;
    const link = Buffer.from(target.replace('/SENTINEL', sentinel));
    h.entries.push({ name, data: link, mode: S_IFLNK | 0o777 });
    listEntry(h, name, link);
    if (through) {
      const data = Buffer.from('written through the link\n');
      h.entries.push({ name: `${name}/pwned.txt`, data });
      listEntry(h, `${name}/pwned.txt`, data);
    }
    h.what.push(`symlink ${name} -> ${link}${through ? ' (and a file through it)' : ''}`);
  });

const fileEntries = () => realEntries.filter((e) => e.name.startsWith('files/0/') && ((e.mode ?? 0) & 0o170000) === S_IFREG);

const duplicate: fc.Arbitrary<Feature> = fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([pick, bytes]) => (h) => {
  const files = fileEntries();
  const victim = files[pick % files.length]!;
  h.entries.push({ name: victim.name, data: Buffer.from(bytes) });
  h.what.push(`duplicate ${victim.name}`);
});

/** Sizes in the zip's headers far larger than the data (zip64 when past 4 GiB). */
const hugeSize: fc.Arbitrary<Feature> = fc
  .tuple(fc.nat(), fc.constantFrom(2 ** 31, 2 ** 32 + 7, 2 ** 40, Number.MAX_SAFE_INTEGER), fc.boolean())
  .map(([pick, size, manifestAgrees]) => (h) => {
    const target = h.entries.find((e) => e.name === fileEntries()[pick % fileEntries().length]!.name)!;
    target.declaredSize = size;
    target.declaredCompressedSize = size;
    if (manifestAgrees) {
      const entry = (h.manifest as { entries: { path: string; size: number }[] }).entries.find((e) => e.path === target.name)!;
      entry.size = size;
    } else h.structural = true;
    h.what.push(`${target.name} declared ${size} bytes${manifestAgrees ? ', the manifest too' : ''}`);
  });

const manifestLies: fc.Arbitrary<Feature> = fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: -100, max: -1 })), fc.boolean()).map(([pick, delta, aboutSize]) => (h) => {
  const entries = (h.manifest as { entries: { path: string; size: number; sha256: string }[] }).entries;
  const entry = entries[pick % entries.length]!;
  if (aboutSize) {
    entry.size = Math.max(0, entry.size + delta) === entry.size ? entry.size + 1 : Math.max(0, entry.size + delta);
    h.structural = true;
  } else entry.sha256 = sha256(`${entry.sha256}${delta}`);
  h.what.push(`the manifest lies about ${entry.path}'s ${aboutSize ? 'size' : 'checksum'}`);
});

let bombData: Buffer | undefined;
/** 16 MiB of zeros deflated to a few KiB, recorded as small (or its true size in the zip only). */
const bomb: fc.Arbitrary<Feature> = fc.tuple(fc.integer({ min: 0, max: 4096 }), fc.boolean()).map(([recorded, zipAgrees]) => (h) => {
  bombData ??= Buffer.alloc(16 << 20);
  const name = 'files/0/bomb.bin';
  h.entries.push({ name, data: bombData, method: 8, ...(zipAgrees ? { declaredSize: recorded } : {}) });
  (h.manifest as { entries: unknown[] }).entries.push({ path: name, size: recorded, sha256: sha256(Buffer.alloc(recorded)), mode: 0o644, mtime: '2026-01-01T00:00:00.000Z' });
  if (!zipAgrees) h.structural = true;
  h.what.push(`a deflate bomb recorded as ${recorded} bytes${zipAgrees ? ' in the zip too' : ''}`);
});

/** A manifest that is not one: a field of the wrong type, an entry that is not an entry, or any JSON. */
const badManifest: fc.Arbitrary<Feature> = fc
  .oneof(
    fc.tuple(fc.constantFrom('format', 'id', 'target', 'driver', 'createdAt', 'parts', 'units', 'fileSets', 'entries', 'tags', 'source'), fc.jsonValue({ maxDepth: 2 })).map(
      ([key, value]) => (m: Record<string, any>) => {
        const same = JSON.stringify(value) === JSON.stringify(m[key]) || (typeof value === 'string' && typeof m[key] === 'string' && !['format', 'parts'].includes(key));
        m[key] = same ? 12345 : value;
        return `manifest ${key} = ${JSON.stringify(m[key]).slice(0, 40)}`;
      },
    ),
    fc.tuple(fc.constantFrom('entries', 'units', 'fileSets'), fc.jsonValue({ maxDepth: 1 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))).map(
      ([key, value]) => (m: Record<string, any>) => {
        m[key] = [value, ...(m[key] ?? [])];
        return `manifest ${key}[0] = ${JSON.stringify(value).slice(0, 40)}`;
      },
    ),
    fc.tuple(fc.constantFrom('path', 'size', 'sha256'), fc.constantFrom(null, -1, 1.5, 'x', [], {}, true)).map(([key, value]) => (m: Record<string, any>) => {
      const entry = m.entries.find((e: { path: string }) => e.path.startsWith('files/'));
      if (JSON.stringify(entry[key]) === JSON.stringify(value)) return 'unchanged';
      entry[key] = value;
      return `manifest entry ${key} = ${JSON.stringify(value)}`;
    }),
    fc.constantFrom<[string, unknown]>(['index', '__proto__'], ['index', -1], ['index', 1.5], ['index', 7], ['index', null], ['type', 'file'], ['type', 'socket'], ['path', 5]).map(([key, value]) => (m: Record<string, any>) => {
      m.fileSets[0][key] = value;
      return `manifest fileSets[0].${key} = ${JSON.stringify(value)}`;
    }),
    fc.jsonValue({ maxDepth: 3 }).map((value) => (m: Record<string, any>) => {
      for (const key of Object.keys(m)) delete m[key];
      m.replaced = value;
      return 'manifest replaced by other JSON';
    }),
  )
  .map((change) => (h) => {
    const what = change(h.manifest as Record<string, any>);
    if (what === 'unchanged') (h.manifest as Record<string, any>).format = null;
    if (Object.hasOwn(h.manifest as object, 'replaced')) h.manifest = (h.manifest as { replaced: unknown }).replaced;
    h.structural = true;
    h.what.push(what);
  });

/** Each feature, whether inspect must see it on its own, and whether it replaces the manifest (applied last). */
const feature = fc.oneof(
  slip.map((f) => [f, true, false] as const),
  symlinkOut.map((f) => [f, true, false] as const),
  duplicate.map((f) => [f, true, false] as const),
  hugeSize.map((f) => [f, false, false] as const),
  manifestLies.map((f) => [f, false, false] as const),
  bomb.map((f) => [f, false, false] as const),
  badManifest.map((f) => [f, true, true] as const),
);

const hostile: fc.Arbitrary<Hostile> = fc.array(feature, { minLength: 1, maxLength: 3 }).map((features) => {
  const h: Hostile = {
    entries: realEntries.map((e) => ({ ...e })),
    manifest: structuredClone(realManifest),
    structural: false,
    what: [],
  };
  // One change to the manifest's shape at most, after the features that add to a sound manifest.
  const ordered = [...features.filter((f) => !f[2]), ...features.filter((f) => f[2]).slice(0, 1)];
  for (const [apply, structural] of ordered) {
    apply(h);
    if (structural) h.structural = true;
  }
  h.entries.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(h.manifest)) });
  // A counterexample reads as what was done to the archive, not as its bytes.
  return Object.assign(h, { [fc.toStringMethod]: () => `hostile archive: ${h.what.join('; ')}` });
});

function writeArchive(bytes: Buffer, name = `hostile-${runs++}.zip`): string {
  const file = path.join(work, name);
  writeFileSync(file, bytes);
  return file;
}

describe('hostile archives', () => {
  it('a faithful copy written by the hostile writer verifies: the features below are what is refused', async () => {
    const file = writeArchive(hostileZip([...realEntries, { name: 'manifest.json', data: Buffer.from(JSON.stringify(realManifest)) }]));
    expect(await verifyCode(file)).toBe(ExitCode.ok);
  });

  it('verify, restore and inspect refuse them with exit 3 and write nothing', async () => {
    const before = snapshot();
    await fc.assert(
      fc.asyncProperty(hostile, async (h) => {
        const file = writeArchive(hostileZip(h.entries));
        try {
          const what = h.what.join('; ');
          expect(await verifyCode(file), `verify: ${what}`).toBe(ExitCode.verification);
          expect(await exitOf(restore(file)), `restore: ${what}`).toBe(ExitCode.verification);
          const inspected = await exitOf(inspectBackup(deps, file, 'app'));
          if (h.structural) expect(inspected, `inspect: ${what}`).toBe(ExitCode.verification);
          else expect([ExitCode.ok, ExitCode.verification], `inspect: ${what}`).toContain(inspected);
          expect(readdirSync(sentinel), h.what.join('; ')).toEqual([]);
          expect(snapshot(), h.what.join('; ')).toEqual(before);
        } finally {
          rmSync(file, { force: true });
        }
      }),
      bounded(150, 60_000),
    );
  }, 120_000);
});

describe('damaged copies of a real archive', () => {
  it('truncated anywhere: exit 3 from verify, restore and inspect, with or without its sidecar', async () => {
    const bytes = readFileSync(realArchive);
    const before = snapshot();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: bytes.length - 1 }), fc.boolean(), async (keep, withSidecar) => {
        const id = path.basename(realArchive, '.zip');
        const file = writeArchive(bytes.subarray(0, keep), withSidecar ? `${id}.zip` : undefined);
        if (withSidecar) cpSync(realSidecar, path.join(work, `${id}.json`));
        try {
          expect(await verifyCode(file)).toBe(ExitCode.verification);
          expect(await exitOf(restore(file))).toBe(ExitCode.verification);
          if (!withSidecar) expect(await exitOf(inspectBackup(deps, file, 'app'))).toBe(ExitCode.verification);
          expect(snapshot()).toEqual(before);
        } finally {
          rmSync(file, { force: true });
          rmSync(path.join(work, `${id}.json`), { force: true });
        }
      }),
      bounded(120, 45_000),
    );
  }, 90_000);

  it('a flipped byte with its sidecar beside it: exit 3, nothing written', async () => {
    const bytes = readFileSync(realArchive);
    const id = path.basename(realArchive, '.zip');
    const before = snapshot();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const damaged = Buffer.from(bytes);
        damaged[at] = damaged[at]! ^ xor;
        const file = writeArchive(damaged, `${id}.zip`);
        cpSync(realSidecar, path.join(work, `${id}.json`));
        try {
          expect(await verifyCode(file)).toBe(ExitCode.verification);
          expect(await exitOf(restore(file))).toBe(ExitCode.verification);
          expect(snapshot()).toEqual(before);
        } finally {
          rmSync(file, { force: true });
          rmSync(path.join(work, `${id}.json`), { force: true });
        }
      }),
      bounded(120, 45_000),
    );
  }, 90_000);

  it('a flipped byte and no sidecar: exit 3, or the very data backed up; never a write outside the target', async () => {
    const bytes = readFileSync(realArchive);
    // Half the flips land in manifest.json (the last entry: its data, its data descriptor, then the
    // central directory) and the zip's directory: nothing but the manifest itself vouches for them here.
    const centralDirectory = bytes.readUInt32LE(bytes.length - 22 + 16);
    const start = centralDirectory - 16 - manifestCompressedSize;
    const offset = fc.oneof(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: start, max: bytes.length - 1 }));
    const database = readFileSync(path.join(pristine, 'app.sqlite'));
    const outside = () => snapshot().filter((line) => !line.startsWith('target/') && !line.startsWith('target ') && line !== 'target/');
    const before = outside();
    await fc.assert(
      fc.asyncProperty(offset, fc.oneof(fc.integer({ min: 1, max: 255 }), fc.integer({ min: 0, max: 7 }).map((bit) => 1 << bit)), async (at, xor) => {
        const damaged = Buffer.from(bytes);
        damaged[at] = damaged[at]! ^ xor;
        const file = writeArchive(damaged);
        try {
          const verified = await verifyCode(file);
          expect([ExitCode.ok, ExitCode.verification]).toContain(verified);
          const restored = await exitOf(restore(file));
          if (verified === ExitCode.verification) expect(restored).toBe(ExitCode.verification);
          expect([ExitCode.ok, ExitCode.verification]).toContain(restored);
          if (restored === ExitCode.ok) expect(sha256(readFileSync(path.join(root, 'target', 'app.sqlite')))).toBe(sha256(database));
          expect(readdirSync(sentinel)).toEqual([]);
          expect(outside()).toEqual(before);
        } finally {
          rmSync(file, { force: true });
          resetTarget();
        }
      }),
      bounded(200, 60_000),
    );
  }, 90_000);
});

describe('hostile archives through the CLI', () => {
  it('verify, restore --force and inspect exit 3, with a message and no stack trace', async () => {
    const before = snapshot();
    const cli = (...args: string[]) => runCli(['-c', configFile, ...args], { cwd: root });
    await fc.assert(
      fc.asyncProperty(hostile.filter((h) => h.structural), async (h) => {
        const file = writeArchive(hostileZip(h.entries));
        try {
          for (const args of [['verify', file], ['restore', 'app', file, '--yes', '--force', '--no-snapshot'], ['inspect', file]]) {
            const result = await cli(...args);
            expect(result.code, `${args[0]}: ${h.what.join('; ')}\n${result.stderr}`).toBe(ExitCode.verification);
            expect(result.stderr).not.toMatch(/\n\s+at |TypeError|RangeError/);
          }
          expect(snapshot()).toEqual(before);
        } finally {
          rmSync(file, { force: true });
        }
      }),
      bounded(4, 60_000),
    );
  }, 120_000);
});
