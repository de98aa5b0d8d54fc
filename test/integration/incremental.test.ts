/**
 * Incremental file backups on real trees: a few thousand files changed day by day (added,
 * rewritten, deleted, moved, chmod-ed, replaced by a symlink or a folder), one backup a day, and
 * every day's backup restored over a newer state with --delete-extra and compared with that
 * day's tree, byte for byte, by mode and mtime. Then: a differential restore from an S3 bucket
 * whose base is only in the local folder, clean keeping bases (also for backups in another
 * storage), copy taking a base along, verify catching a damaged or missing base, delete refusing a
 * base still needed, auto restoring a differential backup, and an encrypted differential round trip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupTarget } from '../../src/app/backup.js';
import { cleanTargets } from '../../src/app/clean.js';
import type { AppDeps } from '../../src/app/deps.js';
import { getTarget } from '../../src/app/deps.js';
import { restoreBackup } from '../../src/app/restore.js';
import type { Logger } from '../../src/core/driver.js';
import type { FileEntryRecord } from '../../src/pipeline/files.js';
import { appDeps, testClock } from '../support/app.js';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { s3Env, s3StorageConfig } from '../support/s3.js';
import { type S3TestServer, startS3Server } from '../support/s3server.js';
import { makeSqlite } from '../support/sqlitedb.js';
import { flipByte } from '../support/tamper.js';
import { Tree, treeDifferences } from '../support/trees.js';

const day = (n: number) => new Date(Date.UTC(2026, 2, 1 + n, 2, 0, 0));

function capturingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (a: object | string, b?: string) => lines.push(typeof a === 'string' ? a : (b ?? ''));
  return { lines, debug() {}, info: add, warn: add, error: add };
}

/** A folder with a config whose target `app` (sqlite) backs up ./tree, full every 3 days unless `target` says otherwise. */
function configured(target: Record<string, unknown> = {}, storages?: Record<string, unknown>) {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'), 20);
  const raw = {
    ...(storages ? { storages } : { storage: { path: './store' } }),
    targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./tree'], incremental: { fullEvery: '3d' }, ...target } },
  };
  const configFile = writeConfig(dir, raw);
  const cli = (...args: string[]) => runCli(['-c', configFile, ...args], { cwd: dir });
  return { dir, raw, configFile, cli, tree: path.join(dir, 'tree'), store: path.join(dir, 'store') };
}

/** The same, with app-layer deps on a clock the test sets (local storages only). */
function setup(target: Record<string, unknown> = {}, storages?: Record<string, unknown>) {
  const made = configured(target, storages);
  const clock = testClock(day(0).toISOString());
  const log = capturingLog();
  return { ...made, clock, log, deps: appDeps(made.configFile, made.raw, clock, log) };
}

async function backup(deps: AppDeps, full = false, only?: string) {
  const run = only ? { ...deps, storages: deps.storages.only(only) } : deps;
  return (await backupTarget(run, getTarget(deps, 'app'), { parts: ['db', 'files'], tags: [], note: null, full })).sidecar;
}

function restore(deps: AppDeps, ref: string, deleteExtra: boolean) {
  return restoreBackup(deps, 'app', { ref, only: undefined, into: undefined, dryRun: false, snapshot: false, yes: true, force: false, flush: false, interactive: false, confirm: async () => true, deleteExtra });
}

/** The files a backup holds itself (not from its base). */
function stored(entries: FileEntryRecord[]): string[] {
  return entries.filter((e) => e.path.startsWith('files/0/') && e.base === undefined).map((e) => e.path.slice('files/0/'.length)).sort();
}

function symlinks(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) out.push(child);
      else if (entry.isDirectory()) walk(child);
    }
  };
  walk('');
  return out;
}

describe('a week of differential backups', () => {
  it('stores only what changed since the full backup, and restores every day exactly', async () => {
    const { deps, clock, log, tree: root, dir } = setup();
    const tree = new Tree(root, 42);
    const snapshots: string[] = [];
    const ids: string[] = [];
    const days: { changes?: Parameters<Tree['change']>[1]; full?: boolean; expect: RegExp }[] = [
      { expect: /full backup of app's files: there is no full backup yet/ },
      { changes: { rewrite: 40, add: 30, remove: 25, chmod: 10, move: 5, toSymlink: 1, dropFolder: true }, expect: /differential backup of app's files against app_20260301_020000/ },
      { changes: { rewrite: 20, add: 10, remove: 10, chmod: 5, toFolder: 1 }, expect: /differential backup of app's files against app_20260301_020000/ },
      { changes: { rewrite: 15, add: 5, remove: 5 }, expect: /full backup of app's files: the last full backup app_20260301_020000 is 3d old \(fullEvery 3d\)/ },
      { changes: { rewrite: 30, remove: 30, chmod: 3, move: 3, toSymlink: 2 }, expect: /differential backup of app's files against app_20260304_020000/ },
      { changes: { rewrite: 5 }, full: true, expect: /full backup of app's files: --full was given/ },
      { changes: { add: 7 }, expect: /differential backup of app's files against app_20260306_020000/ },
    ];
    for (const [n, plan] of days.entries()) {
      clock.set(day(n).toISOString());
      if (n === 0) tree.create(3000, 60, day(0));
      else tree.change(day(n), plan.changes!);
      log.lines.length = 0;
      const sidecar = await backup(deps, plan.full);
      expect(log.lines.join('\n')).toMatch(plan.expect);
      if (!('entries' in sidecar)) throw new Error('expected a plain sidecar');
      const entries = sidecar.entries as FileEntryRecord[];
      const files = tree.files();
      // Every file of the set is listed; a differential backup holds the changed files and the symlinks.
      expect(entries.filter((e) => e.path.startsWith('files/')).map((e) => e.path.slice(8)).sort()).toEqual([...files, ...symlinks(root)].sort());
      if (sidecar.base === undefined) {
        expect(stored(entries)).toHaveLength(files.length + symlinks(root).length);
        tree.markFull();
      } else {
        expect(stored(entries)).toEqual([...tree.dirty, ...symlinks(root)].sort());
        expect(entries.filter((e) => e.base !== undefined).every((e) => e.base === sidecar.base)).toBe(true);
      }
      ids.push(sidecar.id);
      snapshots.push(path.join(dir, `day${n}`));
      tree.snapshot(snapshots[n]!);
    }
    expect(ids.map((id) => id.slice(4))).toEqual(['20260301_020000', '20260302_020000', '20260303_020000', '20260304_020000', '20260305_020000', '20260306_020000', '20260307_020000']);

    // Without --delete-extra, what the backup does not hold stays, and the log counts it.
    log.lines.length = 0;
    await restore(deps, ids[5]!, false);
    expect(log.lines).toContain(`left 7 file(s) in ${root} that ${ids[5]} does not hold (restore --delete-extra removes them)`);
    expect(treeDifferences(snapshots[5]!, root).sort()).toEqual(treeDifferences(snapshots[5]!, snapshots[6]!).sort());
    expect(treeDifferences(snapshots[5]!, root).every((d) => d.startsWith('extra '))).toBe(true);

    // Each day, from whatever state the folder is in, with --delete-extra.
    for (const n of [5, 0, 4, 2, 6, 1, 3, 1]) {
      log.lines.length = 0;
      await restore(deps, ids[n]!, true);
      expect(treeDifferences(snapshots[n]!, root), `day ${n}`).toEqual([]);
      if (n === 1 || n === 2 || n === 4 || n === 6) expect(log.lines.join('\n')).toMatch(/is differential: its unchanged files come from app_\d+_020000 in local/);
    }
  });

  it('with compare: "content", a file rewritten at the same size and mtime is stored too', async () => {
    for (const compare of ['metadata', 'content'] as const) {
      const { deps, clock, tree: root } = setup({ incremental: { fullEvery: '7d', compare } });
      const tree = new Tree(root, 7);
      tree.create(200, 8, day(0));
      await backup(deps);
      const victim = tree.files()[17]!;
      const file = path.join(root, victim);
      const { size, mtime } = statSync(file);
      writeFileSync(file, Buffer.alloc(size, 'x'));
      utimesSync(file, mtime, mtime);
      clock.set(day(1).toISOString());
      const sidecar = await backup(deps);
      expect(stored((sidecar as unknown as { entries: FileEntryRecord[] }).entries).includes(victim)).toBe(compare === 'content');
    }
  });
});

describe('S3, clean, copy, verify, encryption', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('restores a differential backup from a bucket whose base is only in the local folder', async () => {
    const prefix = `${server.prefix}incremental/`;
    const { dir, configFile, tree: root } = configured({}, { local: { type: 'local', path: './store' }, offsite: s3StorageConfig(server, prefix) });
    const cli = (...args: string[]) => runCli(['-c', configFile, ...args], { cwd: dir, env: s3Env(server) });
    const tree = new Tree(root, 3);
    tree.create(400, 12, day(0));
    const full = await cli('--json', '--storage', 'local', 'backup');
    expect(full.code, full.stderr).toBe(0);
    const base = full.json().backups[0].id;
    tree.change(day(1), { rewrite: 10, add: 5, remove: 5, chmod: 2, toSymlink: 1 });
    const diff = await cli('--json', '--storage', 'offsite', 'backup');
    expect(diff.code, diff.stderr).toBe(0);
    const id = diff.json().backups[0].id;
    expect(diff.json().backups[0].storages).toEqual(['offsite']);
    expect(diff.stderr).toContain(`differential backup of app's files against ${base}`);
    expect(diff.stderr).toContain(`${base} is not in offsite: a restore from there reads it from local`);
    expect((await server.keys(prefix)).filter((k) => !k.includes('.locks/')).map((k) => k.slice(prefix.length))).toEqual([`${id}.json`, `${id}.zip`]);
    const inspect = (await cli('--json', 'inspect', id)).json();
    expect(inspect.base).toBe(base);
    tree.snapshot(path.join(dir, 'expected'));

    tree.change(day(2), { rewrite: 30, add: 20, remove: 20, toFolder: 1 });
    const restored = await cli('--storage', 'offsite', 'restore', 'app', id, '--yes', '--no-snapshot', '--delete-extra');
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain(`its unchanged files come from ${base} in local`);
    expect(treeDifferences(path.join(dir, 'expected'), root)).toEqual([]);
    const verify = await cli('--json', 'verify', id);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.json().results[0]).toMatchObject({ id, ok: true, checks: ['archive', 'base', 'checksums', 'manifest'], storage: 'offsite' });
  });

  it('clean keeps bases that kept backups need, in the same storage or another; copy takes a base along', async () => {
    const { deps, clock, dir, cli, tree: root } = setup({ incremental: { fullEvery: '7d' } }, { local: { type: 'local', path: './store' }, second: { type: 'local', path: './second' } });
    const tree = new Tree(root, 5);
    tree.create(300, 10, day(0));
    const ids: string[] = [];
    for (let n = 0; n < 7; n++) {
      clock.set(day(n).toISOString());
      if (n > 0) tree.change(day(n), { rewrite: 5, add: 2, remove: 1 });
      ids.push((await backup(deps)).id);
    }
    const dry = await cli('--json', '--storage', 'local', 'clean', '--dry-run', '--keep-last', '2');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json().kept).toEqual([
      { id: ids[6], storage: 'local', reasons: ['keep-last'] },
      { id: ids[5], storage: 'local', reasons: ['keep-last'] },
      { id: ids[0], storage: 'local', reasons: [`base-of:${ids[6]}`, `base-of:${ids[5]}`] },
    ]);
    expect(dry.json().deleted.map((d: { id: string }) => d.id)).toEqual([ids[4], ids[3], ids[2], ids[1]]);
    expect((await cli('--storage', 'local', 'clean', '--dry-run', '--keep-last', '2')).stdout).toContain(`keep    ${ids[0]}  base-of:${ids[6]}, base-of:${ids[5]}`);

    // Copy into an empty storage: the base goes first, then the backup that needs it.
    rmSync(path.join(dir, 'second'), { recursive: true });
    const copied = await cli('--json', 'copy', ids[6]!, '--from', 'local', '--to', 'second');
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.json().copied.map((c: { id: string }) => c.id)).toEqual([ids[0], ids[6]]);
    const verified = await cli('--json', '--storage', 'second', 'verify', ids[6]!);
    expect(verified.json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'base', 'checksums', 'manifest'] });

    // The base only in local, its dependent only in second: clean of local keeps it for second's sake.
    rmSync(path.join(dir, 'second', `${ids[0]}.zip`));
    rmSync(path.join(dir, 'second', `${ids[0]}.json`));
    clock.set(day(7).toISOString());
    const next = (await backup(deps, true, 'local')).id;
    const local = { ...deps, storages: deps.storages.only('local') };
    const cleaned = await cleanTargets(local, [], { dryRun: false, rules: { keepLast: 1 } });
    expect(cleaned.failures).toEqual([]);
    expect(cleaned.kept).toEqual([
      { id: next, storage: 'local', reasons: ['keep-last'] },
      { id: ids[0], storage: 'local', reasons: [`base-of:${ids[6]}`] },
    ]);
    expect(cleaned.deleted.map((d) => d.id)).toEqual([ids[6], ids[5], ids[4], ids[3], ids[2], ids[1]]);
    expect((await cli('--storage', 'second', 'restore', 'app', ids[6]!, '--yes', '--no-snapshot', '--dry-run')).code).toBe(0);
    // Once nothing needs it, it goes.
    rmSync(path.join(dir, 'second'), { recursive: true });
    const last = await cleanTargets(local, [], { dryRun: false, rules: { keepLast: 1 } });
    expect(last.kept.map((k) => [k.id, k.reasons])).toEqual([[next, ['keep-last']]]);
    expect(readdirSync(path.join(dir, 'store')).filter((f) => f.endsWith('.zip'))).toEqual([`${next}.zip`]);
  });

  it('verify fails a differential backup whose base is damaged or missing (exit 3, naming it); the next backup is full', async () => {
    const { cli, store, tree: root } = configured({ incremental: { fullEvery: '7d' } });
    const tree = new Tree(root, 9);
    tree.create(200, 6, day(0));
    const base = (await cli('--json', 'backup')).json().backups[0].id;
    tree.change(day(1), { rewrite: 3 });
    const id = (await cli('--json', 'backup')).json().backups[0].id;
    expect((await cli('--json', 'verify', id)).json().results[0].checks).toEqual(['archive', 'base', 'checksums', 'manifest']);

    flipByte(path.join(store, `${base}.zip`), 200);
    const damaged = await cli('--json', 'verify', id);
    expect(damaged.code).toBe(3);
    expect(damaged.json().results[0]).toMatchObject({ id, ok: false });
    expect(damaged.json().results[0].error).toMatch(new RegExp(`^its base ${base} is bad \\(local: `));
    const restore = await cli('restore', 'app', id, '--yes', '--no-snapshot', '--dry-run');
    expect(restore.code).toBe(3);
    expect(restore.stderr).toContain(`no copy of its base ${base} is good`);
    // The base failed its verify: the next backup does not build on it.
    const after = await cli('--json', 'verify', base);
    expect(after.code).toBe(3);
    const next = await cli('backup');
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`full backup of app's files: the last full backup ${base} is bad: its last verify failed`);

    rmSync(path.join(store, `${base}.zip`));
    rmSync(path.join(store, `${base}.json`));
    const missing = await cli('--json', 'verify', id);
    expect(missing.code).toBe(3);
    expect(missing.json().results[0].error).toBe(`its base ${base} is missing: no storage holds it (local)`);
  });

  it('delete refuses a base that backups which stay need, unless another storage keeps a copy or --force', async () => {
    const { cli, tree: root } = configured({ incremental: { fullEvery: '7d' } }, { local: { type: 'local', path: './store' }, second: { type: 'local', path: './second' } });
    const tree = new Tree(root, 13);
    tree.create(100, 4, day(0));
    const ids: string[] = [];
    for (const args of [[], [], [], ['--full']]) {
      tree.change(new Date(), { rewrite: 2 });
      const made = await cli('--json', 'backup', ...args);
      expect(made.code, made.stderr).toBe(0);
      ids.push(made.json().backups[0].id);
    }
    const [base, d1, d2] = ids as [string, string, string];
    const refused = await cli('--yes', 'delete', base);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(new RegExp(`${base} is the base of (${d1}, ${d2}|${d2}, ${d1}): without it those backups cannot be restored; nothing was deleted`));
    expect((await cli('--json', 'list')).json().backups).toHaveLength(4);
    // Another storage keeps a copy: it may go from this one.
    expect((await cli('--yes', '--storage', 'second', 'delete', base)).code).toBe(0);
    const withOne = await cli('--yes', 'delete', d1, base);
    expect(withOne.code).toBe(5);
    expect(withOne.stderr).toContain(`${base} is the base of ${d2}: without it that backup cannot be restored`);
    const forced = await cli('--yes', 'delete', base, '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(`--force: ${base} is the base of`);
    const verify = await cli('--json', 'verify', d2);
    expect(verify.code).toBe(3);
    expect(verify.json().results[0].error).toBe(`its base ${base} is missing: no storage holds it (local, second)`);
  });

  it('auto restores an empty target from its newest backup, a differential one, with its base', async () => {
    const { cli, dir, tree: root } = configured({ incremental: { fullEvery: '7d' } });
    const tree = new Tree(root, 17);
    tree.create(150, 5, day(0));
    expect((await cli('backup')).code).toBe(0);
    tree.change(day(1), { rewrite: 5, add: 3, remove: 2 });
    const id = (await cli('--json', 'backup')).json().backups[0].id;
    tree.snapshot(path.join(dir, 'expected'));
    writeFileSync(path.join(dir, 'app.sqlite'), '');
    rmSync(root, { recursive: true });
    const auto = await cli('--json', 'auto');
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.json().results).toEqual([{ target: 'app', action: 'restored', id }]);
    expect(treeDifferences(path.join(dir, 'expected'), root)).toEqual([]);
  });

  it('auto passes over a differential backup whose base archive is lost, and restores the newest backup that can be', async () => {
    const { cli, dir, tree: root, store } = configured({ incremental: { fullEvery: '7d' } });
    const tree = new Tree(root, 23);
    tree.create(120, 4, day(0));
    const first = (await cli('--json', 'backup')).json().backups[0].id;
    tree.snapshot(path.join(dir, 'first'));
    tree.change(day(1), { rewrite: 6, add: 2, remove: 2 });
    const base = (await cli('--json', 'backup', '--full')).json().backups[0].id;
    tree.change(day(2), { rewrite: 4, add: 1, remove: 1 });
    const differential = (await cli('--json', 'backup')).json().backups[0].id;
    expect(new Set([first, base, differential]).size).toBe(3);
    rmSync(path.join(store, `${base}.zip`));
    writeFileSync(path.join(dir, 'app.sqlite'), '');
    rmSync(root, { recursive: true });
    const auto = await cli('--json', 'auto');
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.json().results).toEqual([{ target: 'app', action: 'restored', id: first }]);
    expect(auto.stderr).toMatch(new RegExp(`skipping ${differential}: ${differential} is a differential backup and (no copy of )?its base ${base}`));
    expect(treeDifferences(path.join(dir, 'first'), root)).toEqual([]);
  });

  it('round-trips an encrypted differential backup: the base id in clear, the files restored with the identity', async () => {
    const { dir, cli, configFile, tree: root, store } = configured({ incremental: { fullEvery: '7d' } });
    const key = path.join(dir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    config.targets.app.encryption = { recipients: [recipient] };
    writeFileSync(configFile, JSON.stringify(config));
    const tree = new Tree(root, 11);
    tree.create(300, 9, day(0));
    const base = (await cli('--json', 'backup')).json().backups[0].id;
    tree.change(day(1), { rewrite: 8, add: 3, remove: 4, chmod: 2 });
    // The host keeps the base's file index: no identity is needed to back up.
    const diff = await cli('--json', 'backup');
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stderr).toContain(`differential backup of app's files against ${base}`);
    const id = diff.json().backups[0].id;
    const sidecar = JSON.parse(readFileSync(path.join(store, `${id}.json`), 'utf8'));
    expect(sidecar.base).toBe(base);
    expect(sidecar.entries).toBeUndefined();
    expect(JSON.stringify(sidecar)).not.toContain('.txt');
    expect(statSync(path.join(store, `${id}.zip.age`)).size).toBeLessThan(statSync(path.join(store, `${base}.zip.age`)).size / 3);
    tree.snapshot(path.join(dir, 'expected'));
    tree.change(day(2), { rewrite: 20, add: 10, remove: 10 });

    expect((await cli('restore', 'app', id, '--yes', '--no-snapshot')).code).toBe(2);
    const restored = await cli('--identity', key, 'restore', 'app', id, '--yes', '--no-snapshot', '--delete-extra');
    expect(restored.code, restored.stderr).toBe(0);
    expect(treeDifferences(path.join(dir, 'expected'), root)).toEqual([]);
    const verify = await cli('--json', '--identity', key, 'verify', id);
    expect(verify.json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'base', 'checksums', 'manifest'] });

    // Without the index and without the identity, the next backup is full; with the identity, differential again.
    rmSync(path.join(store, '.incremental'), { recursive: true });
    const blind = await cli('--json', 'backup');
    expect(blind.stderr).toContain(`full backup of app's files: the last full backup ${base} is encrypted and its file list cannot be read here`);
    const next = blind.json().backups[0].id;
    expect(existsSync(path.join(store, '.incremental', 'app.json'))).toBe(true);
    rmSync(path.join(store, '.incremental'), { recursive: true });
    tree.change(day(3), { rewrite: 2 });
    const keyed = await cli('--json', '--identity', key, 'backup');
    expect(keyed.stderr).toContain(`differential backup of app's files against ${next}`);
  });
});
