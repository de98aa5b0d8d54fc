/**
 * Refs as an operator types them (contract: "A ref is a backup id, `latest`, or a path"): what
 * `latest` picks, unknown names, and paths relative to the folder the command runs in.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { makeFiles, makeSqlite, sqliteRows } from '../support/sqlitedb.js';

function setup() {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'));
  makeFiles(path.join(dir, 'uploads'));
  makeSqlite(path.join(dir, 'plain.sqlite'), 5);
  const config = writeConfig(dir, {
    storage: { path: './store' },
    targets: {
      app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] },
      plain: { driver: 'sqlite', path: './plain.sqlite' },
    },
  });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const backup = async (...args: string[]) => {
    const result = await cli('--json', 'backup', ...args);
    expect(result.code, result.stderr).toBe(0);
    return result.json().backups[0].id as string;
  };
  return { dir, cli, config, backup };
}

describe('latest', () => {
  it('is the newest complete backup of the target: not files-only, db-only or a pre-restore snapshot', async () => {
    const { cli, backup, dir } = setup();
    const full = await backup('app');
    await backup('app', '--only', 'files');
    await backup('app', '--only', 'db');
    const restore = await cli('--json', 'restore', 'app', '--dry-run');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json().id).toBe(full);
    expect((await cli('--json', 'restore', 'app', 'latest', '--dry-run')).json().id).toBe(full);
    expect((await cli('--json', 'inspect', 'latest', '--target', 'app')).json().id).toBe(full);
    expect((await cli('--json', 'verify', 'latest', '--target', 'app')).json().results.map((r: { id: string }) => r.id)).toEqual([full]);

    // A restore's snapshot (db and files, tagged pre-restore) is never "latest".
    const restored = await cli('--json', 'restore', 'app', '--yes');
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.json()).toMatchObject({ id: full, snapshot: expect.any(String) });
    expect((await cli('--json', 'restore', 'app', '--dry-run')).json().id).toBe(full);

    // auto restores the same backup into an empty database, with its files.
    const before = sqliteRows(path.join(dir, 'app.sqlite'));
    rmSync(path.join(dir, 'app.sqlite'));
    const auto = await cli('--json', 'auto', 'app');
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.json().results).toEqual([{ target: 'app', action: 'restored', id: full }]);
    expect(sqliteRows(path.join(dir, 'app.sqlite'))).toEqual(before);
  });

  it('takes a db-only backup as complete for a target without files, and says so when there is none', async () => {
    const { cli, backup } = setup();
    await backup('app', '--only', 'files');
    const none = await cli('restore', 'app', '--dry-run');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no complete backup of app');
    const plain = await backup('plain');
    expect((await cli('--json', 'restore', 'plain', '--dry-run')).json().id).toBe(plain);
  });
});

describe('names that are no target and no backup', () => {
  it('verify of such a name is a usage error (exit 2) with a suggestion and the targets; a missing id is exit 3', async () => {
    const { cli, backup } = setup();
    const id = await backup('app');
    const typo = await cli('--json', 'verify', 'ap');
    expect(typo.code).toBe(2);
    expect(typo.json().error.message).toMatch(/"ap".*did you mean "app"\?/);
    const text = await cli('verify', id, 'appp');
    expect(text.code).toBe(2);
    expect(text.stdout).toBe(''); // nothing was checked
    expect(text.stderr).toMatch(/did you mean "app"\?/);
    expect(text.stderr).toContain('app, plain');
    for (const args of [['--target', 'appp'], ['latest', '--target', 'appp']]) {
      const unknown = await cli('verify', ...args);
      expect(unknown.code, args.join(' ')).toBe(2);
      expect(unknown.stderr).toMatch(/unknown target "appp" \(did you mean "app"\?\)/);
      expect(unknown.stderr).toContain('app, plain');
    }
    const missing = await cli('--json', 'verify', 'app_20200101_000000');
    expect(missing.code).toBe(3);
    expect(missing.json().results).toEqual([{ id: 'app_20200101_000000', ok: false, checks: [], error: expect.stringContaining('no backup app_20200101_000000') }]);
    const inspect = await cli('inspect', 'lastest');
    expect(inspect.code).toBe(2);
    expect(inspect.stderr).toMatch(/did you mean "latest"\?/);
  });
});

describe('archive paths', () => {
  it('resolve against the folder the command runs in; one that does not exist is a usage error (exit 2)', async () => {
    const { dir, config, backup } = setup();
    const id = await backup('plain');
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: sub });
    const inspect = await cli('--json', 'inspect', `../store/${id}.zip`);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.json().id).toBe(id);
    for (const args of [['restore', 'plain', './x.zip', '--dry-run'], ['inspect', 'backups/x.zip'], ['verify', '../a.zip']]) {
      const missing = await cli(...args);
      expect(missing.code, args.join(' ')).toBe(2);
      const given = args.find((a) => a.endsWith('.zip'))!;
      expect(missing.stderr).toContain(given);
      expect(missing.stderr).toContain(path.resolve(sub, given));
    }
  });
});
