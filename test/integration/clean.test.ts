/**
 * clean end to end on real archives made at chosen dates (the app layer takes `now`): the dry run
 * and the real run agree, deleted files are gone, kept ones verify, orphans are handled.
 */
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupTarget } from '../../src/app/backup.js';
import { cleanTargets } from '../../src/app/clean.js';
import { getTarget } from '../../src/app/deps.js';
import { tempDir } from '../support/cli.js';
import { appDeps, testClock } from '../support/app.js';
import { makeSqlite } from '../support/sqlitedb.js';
import { runCli, writeConfig } from '../support/cli.js';

async function storeWithHistory(retention: Record<string, unknown> | undefined) {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'a.sqlite'), 5);
  makeSqlite(path.join(dir, 'b.sqlite'), 5);
  mkdirSync(path.join(dir, 'uploads'));
  writeFileSync(path.join(dir, 'uploads', 'f.txt'), 'file');
  const raw = {
    storage: { path: './store' },
    targets: {
      a: { driver: 'sqlite', path: './a.sqlite', files: ['./uploads'], ...(retention ? { retention } : {}) },
      b: { driver: 'sqlite', path: './b.sqlite' },
    },
  };
  const configFile = writeConfig(dir, raw);
  const clock = testClock('2026-01-01T02:00:00Z');
  const deps = appDeps(configFile, raw, clock);
  // One backup a day at 02:00 for 60 days, a second one on the last day.
  const ids: string[] = [];
  for (let day = 0; day < 60; day++) {
    clock.set(new Date(Date.UTC(2026, 0, 1 + day, 2)).toISOString());
    ids.push((await backupTarget(deps, getTarget(deps, 'a'), { parts: ['db', 'files'], tags: [], note: null })).sidecar.id);
  }
  clock.set('2026-03-01T14:00:00Z');
  ids.push((await backupTarget(deps, getTarget(deps, 'a'), { parts: ['db', 'files'], tags: [], note: null })).sidecar.id);
  clock.set('2026-03-01T15:00:00Z');
  return { dir, deps, ids, clock, store: path.join(dir, 'store'), configFile };
}

describe('clean', () => {
  it('keeps what the rules keep, with reasons; the dry run and the real run agree', async () => {
    const { deps, ids, store } = await storeWithHistory({ keepDaily: 7, keepWeekly: 4, keepMonthly: 3 });
    expect(ids).toHaveLength(61);
    const dry = await cleanTargets(deps, ['a'], { dryRun: true, rules: {} });
    expect(dry.failures).toEqual([]);
    // 2026-03-01 (two backups: the newer kept) back to 02-23 daily; Sundays 02-22, 02-15, 02-08
    // weekly (03-01 is itself a Sunday, ending ISO week 9); month ends 02-28 and 01-31 monthly.
    expect(dry.kept.map((k) => k.id)).toEqual([
      'a_20260301_140000', 'a_20260228_020000', 'a_20260227_020000', 'a_20260226_020000', 'a_20260225_020000',
      'a_20260224_020000', 'a_20260223_020000', 'a_20260222_020000', 'a_20260215_020000', 'a_20260208_020000',
      'a_20260131_020000',
    ]);
    expect(dry.kept[0]!.reasons).toEqual(['keep-daily', 'keep-weekly', 'keep-monthly']);
    expect(dry.kept.find((k) => k.id === 'a_20260228_020000')!.reasons).toEqual(['keep-daily', 'keep-monthly']);
    expect(dry.deleted).toHaveLength(50);
    expect(dry.freedBytes).toBe(dry.deleted.reduce((s, d) => s + d.bytes, 0));
    expect(readdirSync(store).filter((f) => f.endsWith('.zip'))).toHaveLength(61); // nothing deleted

    const real = await cleanTargets(deps, ['a'], { dryRun: false, rules: {} });
    expect({ ...real, dryRun: true }).toEqual(dry);
    for (const { id } of real.deleted) {
      expect(existsSync(path.join(store, `${id}.zip`))).toBe(false);
      expect(existsSync(path.join(store, `${id}.json`))).toBe(false);
    }
    expect(readdirSync(store).filter((f) => f.endsWith('.zip')).sort()).toEqual(dry.kept.map((k) => `${k.id}.zip`).sort());
    const again = await cleanTargets(deps, ['a'], { dryRun: false, rules: {} });
    expect(again.deleted).toEqual([]);
  });

  it('lets flags replace the rules; --retention-days keeps a window; the newest is always kept', async () => {
    const { deps } = await storeWithHistory({ keepDaily: 30 });
    const last = await cleanTargets(deps, ['a'], { dryRun: true, rules: { keepLast: 3 } });
    expect(last.kept.map((k) => k.id)).toEqual(['a_20260301_140000', 'a_20260301_020000', 'a_20260228_020000']);
    const within = await cleanTargets(deps, ['a'], { dryRun: true, rules: { keepWithin: 5 * 86_400_000 } });
    expect(within.kept.map((k) => k.id).at(-1)).toBe('a_20260225_020000');
    const none = await cleanTargets(deps, ['a'], { dryRun: true, rules: { keepWithin: 0 } });
    expect(none.kept).toEqual([{ id: 'a_20260301_140000', storage: 'local', reasons: ['newest'] }]);
  });

  it('never cleans a target without rules (exit 2), and still cleans the others', async () => {
    const { dir, configFile, deps } = await storeWithHistory({ keepLast: 2 });
    await backupTarget(deps, getTarget(deps, 'b'), { parts: ['db', 'files'], tags: [], note: null });
    const result = await runCli(['-c', configFile, '--json', 'clean'], { cwd: dir });
    expect(result.code).toBe(2);
    const doc = result.json();
    expect(doc.deleted).toHaveLength(59);
    expect(doc.kept.map((k: { id: string }) => k.id)).toEqual(['a_20260301_140000', 'a_20260301_020000']);
    expect(result.stderr).toContain('target b has no retention rule; nothing was deleted');
    expect(readdirSync(path.join(dir, 'store')).filter((f) => f.startsWith('b_') && f.endsWith('.zip'))).toHaveLength(1);
  });

  it('does not count partial backups toward keepLast, and removes orphans', async () => {
    const { deps, store, clock } = await storeWithHistory({ keepLast: 2 });
    clock.set('2026-03-02T02:00:00Z');
    const { sidecar: partial } = await backupTarget(deps, getTarget(deps, 'a'), { parts: ['db'], tags: [], note: null });
    expect(partial.parts).toEqual(['db']); // the target also has files: this backup is partial
    // An archive without a sidecar (older than an hour), and a sidecar without an archive.
    writeFileSync(path.join(store, 'a_20250101_000000.zip'), 'x'.repeat(100));
    const old = new Date('2026-03-01T00:00:00Z');
    utimesSync(path.join(store, 'a_20250101_000000.zip'), old, old);
    rmSync(path.join(store, 'a_20260110_020000.zip'));
    writeFileSync(path.join(store, 'a_20260302_010000.zip'), 'fresh, maybe still being written');
    clock.set('2026-03-02T03:00:00Z');
    const dry = await cleanTargets(deps, ['a'], { dryRun: true, rules: {} });
    expect(dry.kept.map((k) => k.id)).toEqual(['a_20260301_140000', 'a_20260301_020000']);
    const deleted = dry.deleted.map((d) => d.id);
    expect(deleted).toContain(partial.id);
    expect(deleted).toContain('a_20250101_000000');
    expect(deleted).toContain('a_20260110_020000');
    expect(deleted).not.toContain('a_20260302_010000');
    await cleanTargets(deps, ['a'], { dryRun: false, rules: {} });
    expect(existsSync(path.join(store, 'a_20250101_000000.zip'))).toBe(false);
    expect(existsSync(path.join(store, 'a_20260110_020000.json'))).toBe(false);
    expect(existsSync(path.join(store, 'a_20260302_010000.zip'))).toBe(true);
  });

  it('plans its deletes again under the lock: a backup that finished since its first listing is kept, not taken for an orphan', async () => {
    const { deps, store, clock } = await storeWithHistory({ keepLast: 100 });
    // A backup over an hour long: its archive is old when its sidecar is written.
    clock.set('2026-03-02T02:00:00Z');
    const { sidecar } = await backupTarget(deps, getTarget(deps, 'a'), { parts: ['db', 'files'], tags: [], note: null });
    const archive = path.join(store, `${sidecar.id}.zip`);
    const started = new Date('2026-03-02T00:30:00Z');
    utimesSync(archive, started, started);
    clock.set('2026-03-02T02:00:01Z');
    // The first listing is taken just before the sidecar lands; the lock is free by the time clean asks.
    const [storage] = deps.storages.all;
    const list = storage!.list.bind(storage);
    let listings = 0;
    storage!.list = async () => {
      const listing = await list();
      if (++listings > 1) return listing;
      return { ...listing, sidecars: listing.sidecars.filter((s) => s.id !== sidecar.id), sidecarIds: new Set([...listing.sidecarIds].filter((id) => id !== sidecar.id)) };
    };
    const cleaned = await cleanTargets(deps, ['a'], { dryRun: false, rules: {} });
    expect(listings).toBe(2);
    expect(cleaned.failures).toEqual([]);
    expect(cleaned.deleted).toEqual([]);
    expect(cleaned.kept.map((k) => k.id)).toContain(sidecar.id);
    expect(existsSync(archive)).toBe(true);
    expect(existsSync(path.join(store, `${sidecar.id}.json`))).toBe(true);
  });
});

describe('clean --json with failures', () => {
  it('carries each failed target and storage in "failures", cleans the other storages, and exits 1', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'a.sqlite'), 5);
    makeSqlite(path.join(dir, 'b.sqlite'), 5);
    const configFile = writeConfig(dir, {
      storages: { local: { type: 'local', path: './store' }, spare: { type: 'local', path: './spare' } },
      targets: {
        a: { driver: 'sqlite', path: './a.sqlite', retention: { keepLast: 1 } },
        b: { driver: 'sqlite', path: './b.sqlite', storages: ['local'] },
      },
    });
    const cli = (...args: string[]) => runCli(['-c', configFile, ...args], { cwd: dir });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await cli('--json', 'backup', 'a')).json().backups[0].id);
    // The spare storage breaks: its folder is now a file, so it cannot be listed.
    rmSync(path.join(dir, 'spare'), { recursive: true });
    writeFileSync(path.join(dir, 'spare'), 'not a folder');
    for (const dryRun of [true, false]) {
      const result = await cli('--json', 'clean', ...(dryRun ? ['--dry-run'] : []));
      expect(result.code, result.stderr).toBe(1);
      const doc = result.json();
      expect(doc.failures).toEqual([
        { target: 'a', storage: 'spare', error: expect.stringContaining('not a directory') },
        { target: 'b', error: 'target b has no retention rule; nothing was deleted' },
      ]);
      // The local storage is cleaned all the same.
      expect(doc.deleted.map((d: { id: string }) => d.id).sort()).toEqual([ids[0], ids[1]]);
      expect(doc.dryRun).toBe(dryRun);
    }
    expect(readdirSync(path.join(dir, 'store')).filter((f) => f.endsWith('.zip'))).toEqual([`${ids[2]}.zip`]);
    const history = (await cli('--json', 'history', '--failed')).json().runs;
    expect(history).toMatchObject([
      { command: 'clean', target: 'b', ok: false },
      { command: 'clean', target: 'a', ok: false, error: expect.stringContaining('storage spare') },
    ]);
    const text = await cli('clean', 'a');
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/✖ a \(spare\): .*not a directory/);
  });
});
