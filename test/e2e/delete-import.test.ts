/**
 * delete and import through the CLI (contract: `delete <ref...>`, `import <file...>`): delete's
 * refusals (off a terminal, the newest good backup, an unknown id) leave everything in place, its
 * one confirmation on a terminal, --storage; import of an archive from another storage folder,
 * identical to the original there, and its refusals (a foreign target, a damaged archive, an id
 * already taken by another backup).
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, runCli, tempDir, writeConfig } from '../support/cli.js';
import { makeFiles, makeSqlite } from '../support/sqlitedb.js';
import { flipByte } from '../support/tamper.js';

function setup(storages: Record<string, unknown> = { storage: { path: './store' } }) {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'), 50);
  makeFiles(path.join(dir, 'uploads'));
  const config = writeConfig(dir, { ...storages, targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] } } });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const backup = async () => {
    const result = await cli('--json', 'backup', 'app');
    expect(result.code, result.stderr).toBe(0);
    return result.json().backups[0] as { id: string; size: number; sha256: string };
  };
  const ids = async () => (await cli('--json', 'list')).json().backups.map((b: { id: string }) => b.id);
  return { dir, config, cli, backup, ids, store: path.join(dir, 'store') };
}

/** Run the CLI on a terminal (`script`), answering its question with `answer`. */
function onTty(config: string, dir: string, args: string, answer: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', `${process.execPath} ${BIN} -c ${config} ${args}`, '/dev/null'], { cwd: dir, env: { ...process.env, CI: 'true' } });
    let out = '';
    let sent = false;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!sent && out.includes('[y/N]')) {
        sent = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('delete', () => {
  it('refuses off a terminal without --yes, and the newest good backup without --force; deletes with --yes', async () => {
    const { cli, backup, ids, store } = setup();
    const [a, b, c] = [await backup(), await backup(), await backup()];
    const refused = await cli('--json', 'delete', a.id);
    expect(refused.code).toBe(5);
    expect(refused.json().error.message).toContain('stdin is not a terminal');
    const newest = await cli('delete', c.id, a.id, '--yes');
    expect(newest.code).toBe(5);
    expect(newest.stderr).toContain(`${c.id} is the newest good backup of app in local`);
    expect(newest.stderr).toContain('--force');
    const unknown = await cli('delete', a.id, 'app_20200101_000000', '--yes');
    expect(unknown.code).toBe(2);
    expect(await ids()).toEqual([c.id, b.id, a.id]);

    const deleted = await cli('--json', 'delete', a.id, b.id, '--yes');
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.json()).toEqual({
      deleted: [
        { id: a.id, storage: 'local', bytes: a.size },
        { id: b.id, storage: 'local', bytes: b.size },
      ],
      freedBytes: a.size + b.size,
    });
    expect(readdirSync(store).filter((f) => f.startsWith(a.id) || f.startsWith(b.id))).toEqual([]);
    expect(await ids()).toEqual([c.id]);
    const history = (await cli('--json', 'history', '--limit', '2')).json().runs;
    expect(history.map((r: { command: string; id: string; ok: boolean }) => [r.command, r.id, r.ok])).toEqual([
      ['delete', b.id, true],
      ['delete', a.id, true],
    ]);

    const forced = await cli('delete', c.id, '--yes', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await ids()).toEqual([]);
  });

  it('asks once on a terminal, naming the backup, and deletes only on yes', async () => {
    const { config, dir, backup, ids } = setup();
    const old = await backup();
    const newest = await backup();
    const no = await onTty(config, dir, `delete ${old.id}`, 'n');
    expect(no.code).toBe(5);
    expect(no.out).toMatch(new RegExp(`${old.id}\\s+\\(\\d+ seconds? ago, [\\d.]+ KiB\\)\\s+from local`));
    expect(await ids()).toEqual([newest.id, old.id]);
    const yes = await onTty(config, dir, `delete ${old.id}`, 'y');
    expect(yes.code, yes.out).toBe(0);
    expect(await ids()).toEqual([newest.id]);
  });

  it('deletes from --storage only, or from every storage that holds the backup', async () => {
    const { cli, backup, dir } = setup({ storages: { near: { type: 'local', path: './near' }, far: { type: 'local', path: './far' } } });
    const old = await backup();
    await backup();
    const one = await cli('--json', '--storage', 'far', 'delete', old.id, '--yes');
    expect(one.code, one.stderr).toBe(0);
    expect(one.json().deleted).toEqual([{ id: old.id, storage: 'far', bytes: old.size }]);
    expect(existsSync(path.join(dir, 'near', `${old.id}.zip`))).toBe(true);
    expect(existsSync(path.join(dir, 'far', `${old.id}.zip`))).toBe(false);
    const rest = await cli('--json', 'delete', old.id, '--yes');
    expect(rest.json().deleted).toEqual([{ id: old.id, storage: 'near', bytes: old.size }]);
    expect(existsSync(path.join(dir, 'near', `${old.id}.json`))).toBe(false);
  });
});

describe('import', () => {
  it('adopts an archive from another storage folder with its id, its sidecar as the original', async () => {
    const home = setup();
    const { id, sha256 } = await home.backup();
    const away = setup({ storage: { path: './elsewhere' } });
    const archive = path.join(home.store, `${id}.zip`);

    const imported = await away.cli('--json', 'import', archive);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.json().imported).toEqual([expect.objectContaining({ id, target: 'app', sha256, storages: ['local'] })]);
    const stored = path.join(away.dir, 'elsewhere');
    expect(readFileSync(path.join(stored, `${id}.zip`)).equals(readFileSync(archive))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(stored, `${id}.json`), 'utf8'))).toEqual(JSON.parse(readFileSync(path.join(home.store, `${id}.json`), 'utf8')));
    const verify = await away.cli('--json', 'verify', '--deep');
    expect(verify.json().results).toEqual([expect.objectContaining({ id, ok: true, checks: ['archive', 'checksums', 'manifest', 'restore'] })]);

    // Again: the same backup is there already; skipped, and that is fine.
    const again = await away.cli('--json', 'import', archive);
    expect(again.code).toBe(0);
    expect(again.json()).toEqual({ imported: [], skipped: [{ id, file: archive, storage: 'local', reason: 'present' }] });

    // Another backup under the same id is never overwritten: exit 1.
    const sidecarFile = path.join(stored, `${id}.json`);
    const sidecar = JSON.parse(readFileSync(sidecarFile, 'utf8'));
    writeFileSync(sidecarFile, JSON.stringify({ ...sidecar, archive: { ...sidecar.archive, sha256: '0'.repeat(64) } }));
    const clash = await away.cli('--json', 'import', archive);
    expect(clash.code).toBe(1);
    expect(clash.json().skipped).toEqual([{ id, file: archive, storage: 'local', reason: 'different' }]);
    expect(JSON.parse(readFileSync(sidecarFile, 'utf8')).archive.sha256).toBe('0'.repeat(64));
  });

  it('refuses an archive of a foreign target unless --target and --force, and a damaged one (exit 3)', async () => {
    const home = setup();
    const { id } = await home.backup();
    const dir = tempDir();
    makeSqlite(path.join(dir, 'crm.sqlite'), 5);
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { crm: { driver: 'sqlite', path: './crm.sqlite' } } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const archive = path.join(home.store, `${id}.zip`);

    const foreign = await cli('import', archive);
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toContain('belongs to target app');
    expect(foreign.stderr).toContain('--target <name> --force');
    const unforced = await cli('import', archive, '--target', 'crm');
    expect(unforced.code).toBe(2);
    expect(unforced.stderr).toContain(`${id} belongs to target app, not crm`);
    expect(existsSync(path.join(dir, 'store')) ? readdirSync(path.join(dir, 'store')).filter((f) => f.includes(id)) : []).toEqual([]);

    const damaged = path.join(dir, `${id}.zip`);
    copyFileSync(archive, damaged);
    flipByte(damaged, 200); // inside db/database.sqlite's deflated data
    const bad = await cli('import', damaged, '--target', 'crm', '--force');
    expect(bad.code).toBe(3);
    expect((await cli('--json', 'list')).json().backups).toEqual([]);

    const forced = await cli('--json', 'import', archive, '--target', 'crm', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect((await cli('--json', 'list')).json().backups.map((b: { id: string; target: string }) => [b.id, b.target])).toEqual([[id, 'app']]);
  });

  it('imports an encrypted archive with its sidecar: size and SHA-256 checked without a key, everything with one', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'), 30);
    const key = path.join(dir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    const configIn = (store: string) =>
      writeConfig(dir, { storage: { path: store }, targets: { app: { driver: 'sqlite', path: './app.sqlite', encryption: { recipients: [recipient] } } } }, `${store}.json`);
    const cliOf = (config: string) => (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const home = cliOf(configIn('home'));
    const { id, file } = (await home('--json', 'backup')).json().backups[0];
    const archive = path.join(dir, 'home', file);

    const noKey = cliOf(configIn('nokey'));
    const withoutKey = await noKey('--json', 'import', archive);
    expect(withoutKey.code, withoutKey.stderr).toBe(0);
    expect(withoutKey.stderr).toContain('only its size and SHA-256 are checked');
    expect(readFileSync(path.join(dir, 'nokey', file)).equals(readFileSync(archive))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(dir, 'nokey', `${id}.json`), 'utf8'))).toEqual(JSON.parse(readFileSync(path.join(dir, 'home', `${id}.json`), 'utf8')));

    const withKey = cliOf(configIn('withkey'));
    const full = await withKey('--json', '--identity', key, 'import', archive);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).not.toContain('only its size');
    expect((await withKey('--json', '--identity', key, 'verify', '--deep')).json().results[0].checks).toEqual(['archive', 'checksums', 'manifest', 'restore']);

    // A flipped byte is caught with or without the key; an encrypted archive without its sidecar is refused.
    const loose = path.join(dir, 'loose');
    mkdirSync(loose);
    copyFileSync(archive, path.join(loose, file));
    copyFileSync(path.join(dir, 'home', `${id}.json`), path.join(loose, `${id}.json`));
    flipByte(path.join(loose, file), 500);
    const other = cliOf(configIn('other'));
    expect((await other('import', path.join(loose, file))).code).toBe(3);
    expect((await other('--identity', key, 'import', path.join(loose, file))).code).toBe(3);
    copyFileSync(archive, path.join(dir, 'alone.zip.age'));
    const alone = await other('import', path.join(dir, 'alone.zip.age'));
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('it is imported with its sidecar (alone.json) beside it');
    expect((await other('--json', 'list')).json().backups).toEqual([]);
  });
});

