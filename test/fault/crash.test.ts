/**
 * backupkit killed (SIGKILL: nothing of it runs after) at chosen points of a backup, of clean and
 * of a restore.
 * The crash points are set by a preload (test/support/crash.mjs) that kills the process right
 * after a given file operation, so each lands exactly where it is meant to, on any machine; the
 * kill mid-dump is in test/integration/interrupt.test.ts. After each: nothing half-made or
 * half-deleted is listed, the lock the dead run held is taken over, and the next run of the
 * target removes what the dead one left.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { lockFiles, partialFiles, startCli, storageFiles } from '../support/faults.js';
import { makeSqlite, sqliteRows } from '../support/sqlitedb.js';

function setup() {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'));
  const uploads = path.join(dir, 'uploads');
  mkdirSync(uploads);
  for (let i = 0; i < 20; i++) writeFileSync(path.join(uploads, `file-${String(i).padStart(2, '0')}.txt`), `upload ${i}\n`.repeat(1000));
  const config = writeConfig(dir, { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] } } });
  const store = path.join(dir, 'store');
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const crash = async (crashAfter: string, ...args: string[]) => {
    const result = await startCli(['-c', config, ...args], { cwd: dir, crashAfter }).done;
    expect(result.signal, `no crash at ${crashAfter}:\n${result.stderr}`).toBe('SIGKILL');
  };
  const listed = async () => (await cli('--json', 'list')).json().backups as { id: string; file: string }[];
  return { dir, store, cli, crash, listed };
}

/** Every listed backup is whole: its archive is there and verifies. */
async function expectOnlyWholeBackups(ctx: ReturnType<typeof setup>): Promise<void> {
  for (const backup of await ctx.listed()) expect(existsSync(path.join(ctx.store, backup.file)), `${backup.id} is listed without its archive`).toBe(true);
  const verify = await ctx.cli('--json', 'verify');
  expect(verify.code, verify.stdout).toBe(0);
}

describe('backupkit killed during a backup', () => {
  for (const [point, crashAfter] of [
    ['while the file set is added', 'open|uploads/file-10\\.txt$'],
    ['right after the archive got its name, before its sidecar', 'rename|\\.zip$'],
    ['while the sidecar is written', 'writeFile|\\.json\\.\\d+\\.partial$'],
  ] as const) {
    it(`${point}: nothing is listed, and the next run takes over the lock and removes the leftovers`, async () => {
      const ctx = setup();
      await ctx.crash(crashAfter, '--json', 'backup', 'app');
      expect(await ctx.listed()).toEqual([]);
      expect(lockFiles(ctx.store)).toEqual(['app.lock']);
      expect(storageFiles(ctx.store).filter((f) => f !== 'history.jsonl')).not.toEqual([]); // what the dead run left

      const next = await ctx.cli('--json', 'backup', 'app');
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toContain('leftover');
      const id: string = next.json().backups[0].id;
      expect(storageFiles(ctx.store)).toEqual([`${id}.json`, `${id}.zip`, 'history.jsonl']);
      expect(lockFiles(ctx.store)).toEqual([]);
      await expectOnlyWholeBackups(ctx);
    });
  }
});

describe('backupkit killed during clean', () => {
  for (const [point, crashAfter] of [
    ['as it starts deleting a backup', 'rename|\\.json\\.\\d+\\.partial$'],
    ['between deleting an archive and its sidecar', 'rm|\\.zip$'],
    ['between deleting two backups', 'rm|\\.json(\\.\\d+\\.partial)?$'],
  ] as const) {
    it(`${point}: no half-deleted backup is listed, and the next clean takes over the lock and finishes`, async () => {
      const ctx = setup();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await ctx.cli('--json', 'backup', 'app')).json().backups[0].id);
      await ctx.crash(crashAfter, '--json', 'clean', 'app', '--keep-last', '1');
      expect(lockFiles(ctx.store)).toEqual(['app.lock']);
      const after = (await ctx.listed()).map((b) => b.id);
      expect(after).toContain(ids[2]);
      await expectOnlyWholeBackups(ctx);

      const next = await ctx.cli('--json', 'clean', 'app', '--keep-last', '1');
      expect(next.code, next.stderr).toBe(0);
      expect((await ctx.listed()).map((b) => b.id)).toEqual([ids[2]]);
      expect(storageFiles(ctx.store)).toEqual([`${ids[2]}.json`, `${ids[2]}.zip`, 'history.jsonl']);
      expect(partialFiles(ctx.store)).toEqual([]);
      expect(lockFiles(ctx.store)).toEqual([]);
    });
  }
});

describe('backupkit killed during a restore', () => {
  for (const [point, crashAfter] of [
    ['with the new database written beside the old one', 'open|app\\.sqlite\\.backupkit-\\d+\\.tmp$'],
    ['with a restored file written beside its old version', 'chmod|file-05\\.txt\\.backupkit-\\d+\\.tmp$'],
  ] as const) {
    it(`${point}: nothing is replaced, and the next restore takes over the lock and removes the copy`, async () => {
      const ctx = setup();
      const id: string = (await ctx.cli('--json', 'backup', 'app')).json().backups[0].id;
      const backedUp = sqliteRows(path.join(ctx.dir, 'app.sqlite'));
      const db = new Database(path.join(ctx.dir, 'app.sqlite'));
      db.exec('DELETE FROM tags; DELETE FROM items WHERE id > 10');
      db.close();
      const changed = sqliteRows(path.join(ctx.dir, 'app.sqlite'));
      const temps = () => [ctx.dir, path.join(ctx.dir, 'uploads')].flatMap((dir) => readdirSync(dir).filter((f) => f.includes('.backupkit-')));

      await ctx.crash(crashAfter, '--json', 'restore', 'app', id, '--yes', '--no-snapshot');
      // File sets are restored several files at a time: the killed run may leave several copies.
      expect(temps().length).toBeGreaterThan(0);
      if (point.includes('database')) expect(sqliteRows(path.join(ctx.dir, 'app.sqlite'))).toEqual(changed);
      expect(lockFiles(ctx.store)).toEqual(['app.lock']);

      const next = await ctx.cli('--json', 'restore', 'app', id, '--yes', '--no-snapshot');
      expect(next.code, next.stderr).toBe(0);
      expect(sqliteRows(path.join(ctx.dir, 'app.sqlite'))).toEqual(backedUp);
      expect(temps()).toEqual([]);
      expect(lockFiles(ctx.store)).toEqual([]);
    });
  }
});
