/**
 * Two runs of one target at once: the second backup, restore or clean exits 4 naming the run that
 * holds the lock, touches nothing, and the first completes. The first run is held mid-dump by an
 * exclusive SQLite transaction the test holds, so the two overlap on any machine.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { lockFiles, partialFiles, startCli, until } from '../support/faults.js';
import { makeSqlite, sqliteRows } from '../support/sqlitedb.js';

describe('two runs of one target at once', () => {
  it('the second exits 4 naming the lock holder, and the first completes', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.sqlite');
    makeSqlite(file);
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite' } } });
    const store = path.join(dir, 'store');
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const earlier = [(await cli('--json', 'backup', 'app')).json().backups[0].id, (await cli('--json', 'backup', 'app')).json().backups[0].id];
    const rows = sqliteRows(file);

    const writer = new Database(file);
    writer.exec('BEGIN EXCLUSIVE');
    let first!: ReturnType<typeof startCli>;
    try {
      first = startCli(['-c', config, '--json', 'backup', 'app'], { cwd: dir });
      // The first run holds the target's lock and waits for the database in its dump.
      await until('the first run to lock the target and start its archive', () => lockFiles(store).includes('app.lock') && partialFiles(store).length > 0);

      const holder = new RegExp(`locked by a running backup \\(pid ${first.pid} on `);
      const backup = await cli('--json', 'backup', 'app');
      expect(backup.code, backup.stderr).toBe(4);
      expect(backup.json().failures[0].error).toMatch(holder);
      const restore = await cli('--json', 'restore', 'app', earlier[0], '--yes', '--no-snapshot');
      expect(restore.code, restore.stderr).toBe(4);
      expect(restore.json().error.message).toMatch(holder);
      const clean = await cli('--json', 'clean', 'app', '--keep-last', '1');
      expect(clean.code, clean.stderr).toBe(4);
      expect(clean.stderr).toMatch(holder);
      // The first run's work in progress is left alone.
      expect(partialFiles(store)).toHaveLength(1);
    } finally {
      writer.exec('COMMIT');
      writer.close();
    }
    const done = await first.done;
    expect(done.code, done.stderr).toBe(0);
    const id: string = done.json().backups[0].id;
    expect((await cli('--json', 'list')).json().backups.map((b: { id: string }) => b.id).sort()).toEqual([...earlier, id].sort());
    expect(existsSync(path.join(store, `${id}.zip`))).toBe(true);
    expect(sqliteRows(file)).toEqual(rows);
    expect(partialFiles(store)).toEqual([]);
    expect(lockFiles(store)).toEqual([]);
  });
});
