/**
 * The quick start's shape end to end, through the built binary: a SQLite database plus a folder of
 * files, backed up, listed, inspected, verified and restored, with the --json documents the
 * contract specifies.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { makeFiles, makeSqlite, sqliteRows } from '../support/sqlitedb.js';

function setup() {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'));
  makeFiles(path.join(dir, 'uploads'));
  writeFileSync(path.join(dir, 'settings.ini'), 'mode=prod\n');
  const config = writeConfig(dir, {
    storage: { path: './store' },
    targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads', './settings.ini'] } },
  });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  return { dir, cli, db: path.join(dir, 'app.sqlite') };
}

const RECORD_KEYS = ['createdAt', 'driver', 'durationMs', 'encrypted', 'file', 'files', 'id', 'note', 'sha256', 'size', 'storages', 'tags', 'target', 'units'];

describe('sqlite and files, through the CLI', () => {
  it('backs up, lists, inspects and verifies with the contract JSON', async () => {
    const { cli, dir } = setup();
    const backup = await cli('--json', 'backup', '--tag', 'nightly', '--note', 'first');
    expect(backup.code, backup.stderr).toBe(0);
    const doc = backup.json();
    expect(Object.keys(doc).sort()).toEqual(['backups', 'failures']);
    expect(doc.failures).toEqual([]);
    const record = doc.backups[0];
    expect(Object.keys(record).sort()).toEqual(RECORD_KEYS);
    expect(record).toMatchObject({ target: 'app', driver: 'sqlite', units: 2, files: 5, tags: ['nightly'], note: 'first', encrypted: false, storages: ['local'] });
    expect(record.id).toMatch(/^app_\d{8}_\d{6}$/);
    expect(record.file).toBe(`${record.id}.zip`);
    const archive = path.join(dir, 'store', record.file);
    expect(statSync(archive).size).toBe(record.size);
    expect(statSync(archive).mode & 0o777).toBe(0o600);

    const list = (await cli('--json', 'list')).json();
    expect(list.backups).toEqual([record]);
    expect(list.stats).toEqual({ count: 1, totalBytes: record.size, oldest: record.createdAt, newest: record.createdAt });

    const inspect = (await cli('--json', 'inspect', record.id)).json();
    expect(inspect).toMatchObject({ format: 'backupkit-archive/1', id: record.id, parts: ['db', 'files'], archive: { file: record.file, size: record.size, sha256: record.sha256 } });
    expect(inspect.units).toEqual([
      { name: 'items', kind: 'table', count: 200 },
      { name: 'tags', kind: 'table', count: 200 },
    ]);
    expect(inspect.entries.map((e: { path: string }) => e.path)).toEqual([
      'db/database.sqlite',
      'files/0/a/b/deep.bin',
      'files/0/a/script.sh',
      'files/0/link-to-top',
      'files/0/top.txt',
      'files/1/settings.ini',
    ]);

    // An archive given by path alone, with no sidecar beside it: its manifest, and the archive's
    // size and SHA-256 computed from the file.
    const lone = path.join(tempDir(), 'copy.zip');
    writeFileSync(lone, readFileSync(archive));
    const byPath = (await cli('--json', 'inspect', lone)).json();
    expect(byPath).toMatchObject({ id: record.id, archive: { file: 'copy.zip', size: record.size, sha256: createHash('sha256').update(readFileSync(lone)).digest('hex') } });
    expect(byPath.units).toEqual(inspect.units);

    const verify = await cli('--json', 'verify');
    expect(verify.code).toBe(0);
    expect(verify.json()).toEqual({ results: [{ id: record.id, ok: true, checks: ['archive', 'checksums', 'manifest'], error: null, storage: 'local' }] });

    const second = (await cli('--json', 'backup', 'app')).json().backups[0];
    const listed = (await cli('--json', 'list', '--limit', '1')).json();
    expect(listed.backups.map((b: { id: string }) => b.id)).toEqual([second.id]);
    expect(listed.stats.count).toBe(2);
  });

  it('restores the database row for row and the files byte for byte, with modes and mtimes', async () => {
    const { cli, dir, db } = setup();
    const rows = sqliteRows(db);
    const uploads = path.join(dir, 'uploads');
    const deep = readFileSync(path.join(uploads, 'a/b/deep.bin'));
    // A file of several MiB, so the archive spans many blocks: the sidecar's hash must match the file's.
    const big = randomBytes(5 * 1024 * 1024 + 3);
    writeFileSync(path.join(uploads, 'big.bin'), big);
    const backup = (await cli('--json', 'backup')).json().backups[0];
    const id = backup.id;
    expect(createHash('sha256').update(readFileSync(path.join(dir, 'store', backup.file))).digest('hex')).toBe(backup.sha256);
    rmSync(path.join(uploads, 'big.bin'));

    const writable = new Database(db);
    writable.exec("DELETE FROM tags WHERE item_id > 10; DELETE FROM items WHERE id > 10; UPDATE tags SET tag = 'x'; CREATE TABLE extra (x)");
    writable.close();
    rmSync(path.join(uploads, 'a'), { recursive: true });
    rmSync(path.join(uploads, 'empty'), { recursive: true });
    writeFileSync(path.join(uploads, 'top.txt'), 'overwritten');
    writeFileSync(path.join(dir, 'settings.ini'), 'mode=broken\n');

    const restore = await cli('--json', 'restore', 'app', id, '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    const result = restore.json();
    expect(Object.keys(result).sort()).toEqual(['dryRun', 'durationMs', 'id', 'snapshot', 'target', 'units']);
    expect(result).toMatchObject({ target: 'app', id, dryRun: false });
    expect(result.snapshot).toMatch(/^app_/);

    expect(sqliteRows(db)).toEqual(rows);
    expect(readFileSync(path.join(uploads, 'a/b/deep.bin')).equals(deep)).toBe(true);
    expect(readFileSync(path.join(uploads, 'big.bin')).equals(big)).toBe(true);
    expect(readFileSync(path.join(uploads, 'top.txt'), 'utf8')).toBe('top level\n');
    expect(readFileSync(path.join(dir, 'settings.ini'), 'utf8')).toBe('mode=prod\n');
    expect(statSync(path.join(uploads, 'a/script.sh')).mode & 0o777).toBe(0o750);
    expect(statSync(path.join(uploads, 'a/b/deep.bin')).mtime.toISOString()).toBe('2025-03-04T05:06:07.891Z');
    expect(existsSync(path.join(uploads, 'empty'))).toBe(true);
    expect(lstatSync(path.join(uploads, 'link-to-top')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(uploads, 'link-to-top'))).toBe('top.txt');

    // The snapshot holds the damaged state, and restores it.
    const back = await cli('--json', 'restore', 'app', result.snapshot, '--yes', '--no-snapshot');
    expect(back.code, back.stderr).toBe(0);
    expect(sqliteRows(db).extra).toEqual([]);
    expect(readFileSync(path.join(dir, 'settings.ini'), 'utf8')).toBe('mode=broken\n');
  });

  it('stored (level 0): the recorded hash is the file\'s, a flipped byte fails verify, and the database comes back byte for byte', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'app.sqlite');
    makeSqlite(db);
    const writable = new Database(db);
    writable.exec('CREATE TABLE blobs (b BLOB)');
    const insert = writable.prepare('INSERT INTO blobs VALUES (?)');
    for (let i = 0; i < 12; i++) insert.run(randomBytes(1 << 20)); // an archive of many 4 MiB writes
    writable.close();
    const original = readFileSync(db);
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite', compression: { level: 0 } } } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });

    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const record = backup.json().backups[0];
    const archive = path.join(dir, 'store', record.file);
    const bytes = readFileSync(archive);
    expect(bytes.length).toBeGreaterThan(original.length);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(record.sha256);
    expect((await cli('--json', 'verify', record.id)).json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'checksums', 'manifest'] });

    writeFileSync(db, 'not a database any more');
    const restore = await cli('restore', 'app', record.id, '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(readFileSync(db).equals(original)).toBe(true);

    bytes[bytes.length >> 1]! ^= 0x01;
    writeFileSync(archive, bytes);
    const verify = await cli('--json', 'verify', record.id);
    expect(verify.code).toBe(3);
    expect(verify.json().results[0].error).toMatch(/^archive checksum mismatch/);
  });

  it('restores --only some tables, and --into another file', async () => {
    const { cli, dir, db } = setup();
    const rows = sqliteRows(db);
    const id = (await cli('--json', 'backup', 'app', '--only', 'db')).json().backups[0].id;
    expect((await cli('--json', 'inspect', id)).json().parts).toEqual(['db']);
    const writable = new Database(db);
    writable.exec('DELETE FROM tags; DELETE FROM items');
    writable.close();
    const only = await cli('--json', 'restore', 'app', id, '--only', 'tags', '--yes');
    expect(only.code, only.stderr).toBe(0);
    const now = sqliteRows(db);
    expect(now.tags).toEqual(rows.tags);
    expect(now.items).toEqual([]);

    const copy = path.join(dir, 'copy.sqlite');
    const into = await cli('--json', 'restore', 'app', id, '--into', copy, '--yes');
    expect(into.code, into.stderr).toBe(0);
    expect(into.json().snapshot).toBeNull();
    expect(sqliteRows(copy)).toEqual(rows);
  });

  it('--dry-run verifies and plans but changes nothing', async () => {
    const { cli, dir, db } = setup();
    const id = (await cli('--json', 'backup')).json().backups[0].id;
    const writable = new Database(db);
    writable.exec('DELETE FROM tags; DELETE FROM items');
    writable.close();
    const before = readdirSync(path.join(dir, 'store')).sort();
    const dry = await cli('--json', 'restore', 'app', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json()).toMatchObject({ target: 'app', id, snapshot: null, dryRun: true });
    expect(sqliteRows(db).items).toEqual([]);
    expect(readdirSync(path.join(dir, 'store')).sort()).toEqual(before);
    const text = await cli('restore', 'app', '--dry-run');
    expect(text.stdout).toContain('nothing was changed');
  });

  it('records every run in history, newest first, failures included', async () => {
    const { cli, dir } = setup();
    const id = (await cli('--json', 'backup')).json().backups[0].id;
    await cli('verify', id);
    rmSync(path.join(dir, 'uploads'), { recursive: true });
    expect((await cli('backup', 'app')).code).toBe(1); // a files entry is gone
    const history = await cli('--json', 'history');
    expect(history.code).toBe(0);
    const runs = history.json().runs;
    expect(runs.map((r: { command: string }) => r.command)).toEqual(['backup', 'verify', 'backup']);
    expect(Object.keys(runs[0]).sort()).toEqual(['command', 'durationMs', 'error', 'id', 'ok', 'target', 'time']);
    expect(runs[0]).toMatchObject({ target: 'app', ok: false });
    expect(runs[0].error).toContain('does not exist');
    expect(runs[2]).toMatchObject({ command: 'backup', target: 'app', id, ok: true, error: null });
    const failed = (await cli('--json', 'history', '--failed')).json().runs;
    expect(failed).toHaveLength(1);
    expect((await cli('--json', 'history', '--limit', '1')).json().runs).toHaveLength(1);
    expect((await cli('--json', 'history', 'nope')).code).toBe(2);
  });

  it('writes a large --json document whole into a pipe', async () => {
    const { cli, dir } = setup();
    const id = (await cli('--json', 'backup', 'app', '--only', 'db')).json().backups[0].id;
    const sidecar = JSON.parse(readFileSync(path.join(dir, 'store', `${id}.json`), 'utf8'));
    // 3,000 listed backups make a document of well over a pipe's 64 KiB buffer.
    for (let i = 0; i < 3000; i++) {
      const at = new Date(Date.UTC(2020, 0, 1) + i * 3_600_000);
      const other = `app_${at.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '_')}`;
      writeFileSync(path.join(dir, 'store', `${other}.json`), JSON.stringify({ ...sidecar, id: other, createdAt: at.toISOString() }));
    }
    const list = await cli('--json', 'list');
    expect(list.stdout.length).toBeGreaterThan(1 << 20);
    expect(list.json().stats.count).toBe(3001);
  });
});
