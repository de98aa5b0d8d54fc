/**
 * export and diff through the CLI (contract: `export <ref> <dest>`, `diff <refA> <refB>`): an
 * export byte for byte the stored archive, to a file and to stdout; a damaged archive caught as
 * it streams (exit 3, no file left); --decrypt; the changes between two backups, from plain
 * sidecars and, with the identity, from encrypted archives.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BIN, runCli, tempDir, writeConfig } from '../support/cli.js';
import { makeFiles, makeSqlite } from '../support/sqlitedb.js';
import { flipByte } from '../support/tamper.js';

function setup(encrypted = false) {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'), 60);
  makeFiles(path.join(dir, 'uploads'));
  const key = path.join(dir, 'key.txt');
  let encryption = {};
  if (encrypted) {
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    encryption = { encryption: { recipients: [execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim()] } };
  }
  const config = writeConfig(dir, { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'], ...encryption } } });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const backup = async () => {
    const result = await cli('--json', 'backup', 'app');
    expect(result.code, result.stderr).toBe(0);
    return result.json().backups[0] as { id: string; file: string; sha256: string };
  };
  /** The CLI with its stdout in a file (bytes, not text). */
  const toFile = (out: string, ...args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const fd = openSync(out, 'w');
      const child = spawn(process.execPath, [BIN, '-c', config, ...args], { cwd: dir, env: { ...process.env, CI: 'true' }, stdio: ['ignore', fd, 'pipe'] });
      closeSync(fd);
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
  return { dir, cli, backup, toFile, key, store: path.join(dir, 'store') };
}

/** Change the database (one table recounted, one added) and the files (one changed, one added, one removed). */
function change(dir: string): void {
  const db = new Database(path.join(dir, 'app.sqlite'));
  db.exec("DELETE FROM tags WHERE item_id > 50; INSERT INTO items (name) VALUES ('new one'); CREATE TABLE extra (x); INSERT INTO extra VALUES (1), (2)");
  db.close();
  writeFileSync(path.join(dir, 'uploads', 'top.txt'), 'top level, changed\n');
  writeFileSync(path.join(dir, 'uploads', 'added.txt'), 'added\n');
  rmSync(path.join(dir, 'uploads', 'a', 'script.sh'));
}

describe('export', () => {
  it('writes the stored archive byte for byte, to a file, a folder and stdout', async () => {
    const { dir, cli, backup, toFile, store } = setup();
    const { id, file, sha256 } = await backup();
    const stored = readFileSync(path.join(store, file));

    const toPath = await cli('--json', 'export', id, path.join(dir, 'out.zip'));
    expect(toPath.code, toPath.stderr).toBe(0);
    expect(toPath.json()).toEqual({ id, dest: path.join(dir, 'out.zip'), bytes: stored.length, sha256, decrypted: false });
    expect(readFileSync(path.join(dir, 'out.zip')).equals(stored)).toBe(true);

    const toFolder = await cli('export', 'app', 'latest', dir);
    expect(toFolder.code, toFolder.stderr).toBe(0);
    expect(readFileSync(path.join(dir, file)).equals(stored)).toBe(true);

    const piped = await toFile(path.join(dir, 'piped.zip'), 'export', 'app', 'latest', '-');
    expect(piped.code, piped.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'piped.zip')).equals(stored)).toBe(true);
    expect(execFileSync('unzip', ['-t', path.join(dir, 'piped.zip')]).toString()).toContain('No errors detected');

    const jsonToStdout = await cli('--json', 'export', id, '-');
    expect(jsonToStdout.code).toBe(2);
  });

  it('catches a damaged archive as it streams: exit 3, and no file left', async () => {
    const { dir, cli, backup, toFile, store } = setup();
    const { id, file } = await backup();
    flipByte(path.join(store, file), Math.floor(statSync(path.join(store, file)).size / 2));
    const before = readdirSync(dir);
    const toPath = await cli('export', id, path.join(dir, 'out.zip'));
    expect(toPath.code).toBe(3);
    expect(toPath.stderr).toContain('its sidecar says');
    expect(readdirSync(dir)).toEqual(before);
    const piped = await toFile(path.join(dir, 'piped.zip'), 'export', id, '-');
    expect(piped.code).toBe(3);
  });

  it('--decrypt writes the plain zip of an encrypted backup, with its identity only', async () => {
    const { dir, cli, backup, key, store } = setup(true);
    const { id, file } = await backup();
    expect(file).toBe(`${id}.zip.age`);
    const without = await cli('export', id, path.join(dir, 'plain.zip'), '--decrypt');
    expect(without.code).toBe(2);
    expect(without.stderr).toContain('needs its identity');
    const sealed = await cli('export', id, dir);
    expect(readFileSync(path.join(dir, file)).equals(readFileSync(path.join(store, file)))).toBe(true);
    expect(sealed.code).toBe(0);
    const plain = await cli('--json', '--identity', key, 'export', id, path.join(dir, 'plain.zip'), '--decrypt');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json()).toMatchObject({ id, decrypted: true });
    const byAge = execFileSync('age', ['-d', '-i', key, path.join(store, file)]);
    expect(readFileSync(path.join(dir, 'plain.zip')).equals(byAge)).toBe(true);
  });
});

describe('diff', () => {
  it('names the units added and recounted and the files added, removed and changed', async () => {
    const { dir, cli, backup } = setup();
    const a = await backup();
    change(dir);
    const b = await backup();
    const diff = await cli('--json', 'diff', a.id, b.id);
    expect(diff.code, diff.stderr).toBe(0);
    const d = diff.json();
    expect(d.from).toBe(a.id);
    expect(d.to).toBe(b.id);
    expect(d.units).toEqual({
      added: [{ name: 'extra', kind: 'table', count: 2 }],
      removed: [],
      changed: [
        { name: 'items', from: 60, to: 61 },
        { name: 'tags', from: 60, to: 50 },
      ],
    });
    expect(d.files.added).toEqual([{ path: 'files/0/added.txt', size: 6, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    expect(d.files.removed.map((f: { path: string }) => f.path)).toEqual(['files/0/a/script.sh']);
    expect(d.files.changed).toEqual([{ path: 'files/0/top.txt', from: { size: 10, sha256: expect.any(String) }, to: { size: 19, sha256: expect.any(String) } }]);

    const text = await cli('diff', a.id, b.id);
    expect(text.stdout).toContain('+ extra (2)');
    expect(text.stdout).toContain('~ tags  60 → 50 (-10)');
    expect(text.stdout).toContain('- files/0/a/script.sh');
    expect(text.stdout).toContain('~ files/0/top.txt  10 B → 19 B');
    const same = await cli('diff', b.id, b.id);
    expect(same.stdout).toContain('units: no changes');
    expect(same.stdout).toContain('files: no changes');
  });

  it('needs the identity when a backup is encrypted, and reads its manifest with it', async () => {
    const { dir, cli, backup, key } = setup(true);
    const a = await backup();
    change(dir);
    const b = await backup();
    const without = await cli('diff', a.id, b.id);
    expect(without.code).toBe(2);
    expect(without.stderr).toContain('needs its identity');
    const diff = await cli('--json', '--identity', key, 'diff', a.id, b.id);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json().units.added).toEqual([{ name: 'extra', kind: 'table', count: 2 }]);
    expect(diff.json().files.changed.map((f: { path: string }) => f.path)).toEqual(['files/0/top.txt']);
  });
});
