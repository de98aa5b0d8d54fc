/**
 * `config schema` and `config validate`: the JSON Schema for editors, and a check of a config that
 * touches nothing (no storage folder made, no server or bucket contacted).
 */
import { copyFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { schemaErrors } from '../support/jsonschema.js';

const EXAMPLE = fileURLToPath(new URL('../../backupkit.config.example.json', import.meta.url));
/** The example's variables unset, as on a fresh machine. */
const FRESH = { DATABASE_URL: undefined, MONGO_URL: undefined, SHOP_PROJECT: undefined, SHOP_MEDIA: undefined, MYSQL_URL: undefined };

describe('config schema', () => {
  it('prints the JSON Schema, with no config file around, and the shipped example fits it', async () => {
    const result = await runCli(['config', 'schema'], { cwd: tempDir() });
    expect(result.code, result.stderr).toBe(0);
    const schema = result.json();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schemaErrors(schema, JSON.parse(readFileSync(EXAMPLE, 'utf8')))).toEqual([]);
    expect((await runCli(['--json', 'config', 'schema'], { cwd: tempDir() })).json()).toEqual(schema);
  });
});

describe('config validate', () => {
  it('says ok with the counts, and touches nothing: no storage folder, no server, no bucket', async () => {
    const dir = tempDir();
    copyFileSync(EXAMPLE, path.join(dir, 'backupkit.config.json'));
    const found = await runCli(['config', 'validate'], { cwd: dir, env: FRESH });
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toBe(`ok: 6 targets, 1 storage (${path.join(dir, 'backupkit.config.json')})\n`);
    expect(readdirSync(dir)).toEqual(['backupkit.config.json']); // ./backups was not made

    // A listener that counts who knocks: the database and the bucket both point at it.
    let knocks = 0;
    const listener = net.createServer((socket) => {
      knocks++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => listener.close(() => resolve())));
    const port = (listener.address() as net.AddressInfo).port;
    const file = writeConfig(tempDir(), {
      storages: {
        local: { type: 'local', path: './not-made' },
        offsite: { type: 's3', bucket: 'acme-backups', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'not-a-real-secret' },
      },
      targets: { crm: { driver: 'pg_dump', url: `postgres://app@127.0.0.1:${port}/crm` }, demo: { driver: 'sqlite', path: './nothing.sqlite' } },
    });
    // -c after the subcommand, as after any command.
    const json = await runCli(['config', 'validate', '--json', '-c', file]);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json()).toEqual({ ok: true, file, targets: ['crm', 'demo'], storages: ['local', 'offsite'] });
    expect(existsSync(path.join(path.dirname(file), 'not-made'))).toBe(false);
    expect(knocks).toBe(0);
  });

  it('exits 2 naming every problem with its key path, in the words any command uses', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, {
      storage: { path: './store' },
      defaults: { retention: { keepLast: -1 } },
      targets: {
        app: { driver: 'sqlite', pth: './a.sqlite' },
        crm: { driver: 'pgdump', url: 'postgres://h/db' },
        shop: { driver: 'sqlite', path: './s.sqlite', files: ['./media', 3] },
        web: { driver: 'sqlite', path: './w.sqlite', schedule: 'every night' },
      },
    });
    const result = await runCli(['config', 'validate', '-c', file], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    for (const problem of [
      'defaults.retention.keepLast',
      'targets.web.schedule',
      'targets.app.pth: unknown key (did you mean "path"?)',
      'targets.crm.driver: unknown driver "pgdump" (did you mean "pg_dump"?)',
      'targets.shop.files[1]: expected string, received number',
    ]) {
      expect(result.stderr).toContain(problem);
    }
    expect(result.stderr).toContain(file);
    const list = await runCli(['list', '-c', file], { cwd: dir });
    expect(list.stderr).toBe(result.stderr);
    const json = await runCli(['--json', 'config', 'validate', '-c', file], { cwd: dir });
    expect(json.code).toBe(2);
    expect(json.json().error).toMatchObject({ code: 2, message: expect.stringContaining('targets.app.pth') });
    expect(existsSync(path.join(dir, 'store'))).toBe(false);
  });

  it('exits 2 when there is no config to check', async () => {
    const none = await runCli(['config', 'validate'], { cwd: tempDir() });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no config file found');
    expect((await runCli(['config', 'validate', '-c', 'nope.json'], { cwd: tempDir() })).code).toBe(2);
  });
});
