/**
 * Restore safety and archive integrity (contract: "Restore safety", "Exit codes"): refusals,
 * confirmations, corrupt and truncated archives, foreign archives, zip-slip entries, locks.
 * Every refusal is checked to have left the database and the files untouched.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BIN, runCli, tempDir, writeConfig } from '../support/cli.js';
import { makeFiles, makeSqlite, sqliteRows } from '../support/sqlitedb.js';
import { addHostileEntry, flipByte, truncate } from '../support/tamper.js';

function setup() {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'));
  makeSqlite(path.join(dir, 'other.sqlite'), 3);
  makeFiles(path.join(dir, 'uploads'));
  const config = writeConfig(dir, {
    storage: { path: './store' },
    targets: {
      app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] },
      other: { driver: 'sqlite', path: './other.sqlite' },
    },
  });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const damage = () => {
    const db = new Database(path.join(dir, 'app.sqlite'));
    db.exec('DELETE FROM tags WHERE item_id > 100; DELETE FROM items WHERE id > 100');
    db.close();
    return sqliteRows(path.join(dir, 'app.sqlite'));
  };
  return { dir, cli, config, damage, db: path.join(dir, 'app.sqlite'), store: path.join(dir, 'store') };
}

describe('restore safety', () => {
  it('refuses off a terminal without --yes (exit 5), before touching anything', async () => {
    const { cli, damage, db, store } = setup();
    await cli('backup', 'app');
    const damaged = damage();
    const refused = await cli('--json', 'restore', 'app');
    expect(refused.code).toBe(5);
    expect(refused.json().error).toMatchObject({ code: 5 });
    expect(refused.json().error.message).toContain('stdin is not a terminal');
    expect(sqliteRows(db)).toEqual(damaged);
    expect((await cli('--json', 'list')).json().stats.count).toBe(1); // no snapshot was taken
    expect(existsSync(path.join(store, 'history.jsonl'))).toBe(true);
  });

  it('asks twice on a terminal, and restores only when the database name is typed back', async () => {
    const { config, dir, damage, db } = setup();
    const original = sqliteRows(db);
    await runCli(['-c', config, 'backup', 'app'], { cwd: dir });
    const damaged = damage();
    // `script` gives the CLI a real terminal; the answers are typed into it.
    const onTty = (answers: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn('script', ['-qec', `${process.execPath} ${BIN} -c ${config} restore app`, '/dev/null'], { cwd: dir, env: { ...process.env, CI: 'true' } });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        let sent = 0;
        const lines = answers.split('\n');
        child.stdout.on('data', () => {
          if ((out.includes('[y/N]') && sent === 0) || (out.includes('to confirm:') && sent === 1)) child.stdin.write(`${lines[sent++]}\n`);
        });
        child.on('close', (code) => resolve({ code, out }));
      });
    const wrongName = await onTty('y\nnot-the-name');
    expect(wrongName.code).toBe(5);
    expect(wrongName.out).toContain('Type the database name (app.sqlite)');
    expect(sqliteRows(db)).toEqual(damaged);
    const no = await onTty('n');
    expect(no.code).toBe(5);
    expect(sqliteRows(db)).toEqual(damaged);
    const yes = await onTty('y\napp.sqlite');
    expect(yes.code, yes.out).toBe(0);
    expect(sqliteRows(db)).toEqual(original);
  });

  it('refuses an archive of another target or driver, unless given by path with --force', async () => {
    const { cli, store, db } = setup();
    const id = (await cli('--json', 'backup', 'other')).json().backups[0].id;
    const before = sqliteRows(db);
    const byId = await cli('restore', 'app', id, '--yes');
    expect(byId.code).toBe(2);
    expect(byId.stderr).toContain(`belongs to target other, not app`);
    const byPath = await cli('restore', 'app', path.join(store, `${id}.zip`), '--yes');
    expect(byPath.code).toBe(2);
    expect(sqliteRows(db)).toEqual(before);
    const forced = await cli('restore', 'app', path.join(store, `${id}.zip`), '--yes', '--force', '--no-snapshot');
    expect(forced.code, forced.stderr).toBe(0);
    expect(sqliteRows(db).items).toHaveLength(3);
  });
});

describe('archive integrity', () => {
  for (const [what, tamper, message] of [
    ['one flipped byte', (f: string) => flipByte(f, Math.floor(statSync(f).size / 3)), 'checksum mismatch'],
    ['a truncated file', (f: string) => truncate(f, Math.floor(statSync(f).size / 2)), 'truncated'],
  ] as const) {
    it(`fails verify (exit 3) and refuses to restore ${what}`, async () => {
      const { cli, store, damage, db } = setup();
      const good = (await cli('--json', 'backup', 'app')).json().backups[0].id;
      const bad = (await cli('--json', 'backup', 'app', '--only', 'db')).json().backups[0].id;
      tamper(path.join(store, `${bad}.zip`));
      const verify = await cli('--json', 'verify');
      expect(verify.code).toBe(3);
      const results = verify.json().results;
      expect(results.find((r: { id: string }) => r.id === good)).toMatchObject({ ok: true });
      expect(results.find((r: { id: string }) => r.id === bad)).toMatchObject({ ok: false });
      expect(results.find((r: { id: string }) => r.id === bad).error).toContain(message);

      const damaged = damage();
      const restore = await cli('--json', 'restore', 'app', bad, '--yes');
      expect(restore.code).toBe(3);
      expect(sqliteRows(db)).toEqual(damaged);
      expect((await cli('--json', 'list')).json().stats.count).toBe(2); // no snapshot either
    });
  }

  it('finds a damaged entry even when the archive checksum is not available', async () => {
    const { cli, store } = setup();
    const id = (await cli('--json', 'backup', 'app', '--only', 'db')).json().backups[0].id;
    const copy = path.join(store, 'copy', 'moved.zip');
    mkdirSync(path.dirname(copy));
    const data = readFileSync(path.join(store, `${id}.zip`));
    data[200] = data[200]! ^ 0xff; // inside db/database.sqlite's deflated data
    writeFileSync(copy, data);
    const verify = await cli('--json', 'verify', copy);
    expect(verify.code).toBe(3);
    expect(verify.json().results[0].ok).toBe(false);
  });

  it('says so when a target name is given where a backup id belongs', async () => {
    const { cli } = setup();
    const id = (await cli('--json', 'backup', 'app', '--only', 'db')).json().backups[0].id;
    const verify = await cli('--json', 'verify', 'app');
    expect(verify.code).toBe(3); // as for any ref verify cannot find
    expect(verify.json().results[0].error).toMatch(/app is a target, not a backup id/);
    const text = await cli('inspect', 'app');
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/backupkit list app/);
    const byTarget = await cli('--json', 'verify', '--target', 'app');
    expect(byTarget.json().results.map((r: { id: string; ok: boolean }) => [r.id, r.ok])).toEqual([[id, true]]);
  });

  for (const [what, name, data, symlink] of [
    ['a ".." path', 'files/0/../../escaped.txt', 'owned', false],
    ['a symlink pointing outside', 'files/0/evil-link', '../../../etc', true],
  ] as const) {
    it(`refuses an archive with ${what} (zip-slip) and writes nothing`, async () => {
      const { cli, store, dir } = setup();
      const id = (await cli('--json', 'backup', 'app')).json().backups[0].id;
      addHostileEntry(path.join(store, `${id}.zip`), path.join(store, `${id}.json`), name, data, symlink);
      const verify = await cli('--json', 'verify', id);
      expect(verify.code).toBe(3);
      expect(verify.json().results[0].error).toMatch(/unsafe entr/);
      const restore = await cli('restore', 'app', id, '--yes');
      expect(restore.code).toBe(3);
      expect(existsSync(path.join(dir, 'escaped.txt'))).toBe(false);
      expect(existsSync(path.join(dir, '..', 'escaped.txt'))).toBe(false);
      expect(existsSync(path.join(dir, 'uploads', 'evil-link'))).toBe(false);
    });
  }
});

describe('locks', () => {
  it('fails with exit 4 while a live run holds the target, and recovers a stale lock', async () => {
    const { cli, store } = setup();
    mkdirSync(path.join(store, '.locks'), { recursive: true });
    const lock = path.join(store, '.locks', 'app.lock');
    // A live holder: a process of ours that is still running.
    const holder = spawn('sleep', ['30']);
    const ticks = readFileSync(`/proc/${holder.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
    writeFileSync(lock, JSON.stringify({ pid: holder.pid, host: os.hostname(), startTicks: ticks, command: 'backup', since: new Date().toISOString() }));
    try {
      const locked = await cli('--json', 'backup', 'app');
      expect(locked.code).toBe(4);
      expect(locked.json().failures[0].error).toContain(`locked by a running backup (pid ${holder.pid}`);
      const restore = await cli('--json', 'restore', 'app', '--yes');
      expect(restore.code).not.toBe(0);
      // Another target is not blocked.
      expect((await cli('backup', 'other')).code).toBe(0);
    } finally {
      holder.kill();
    }
    // A dead holder: its lock is stale and taken over.
    const dead = Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$" ; true']).toString().trim());
    writeFileSync(lock, JSON.stringify({ pid: dead, host: os.hostname(), startTicks: '1', command: 'backup', since: new Date().toISOString() }));
    const recovered = await cli('--json', 'backup', 'app');
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });
});
