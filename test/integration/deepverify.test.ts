/**
 * verify --deep on real engines: a good backup restores into a scratch whose counts match its
 * manifest; an archive whose manifest count was edited (sidecar and checksums made consistent, so
 * plain verify passes) fails with exit 3, naming the unit and both counts. The scratch is gone
 * afterwards either way, as the server's own listing shows.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { databaseName, mongoInfo, seedShop, withClient } from '../support/mongodb.js';
import { createDatabase as createMysqlDatabase, mysql, mysqlTargetConfig, seedVariedTypes as seedMysql } from '../support/mysqldb.js';
import { createDatabase as createPgDatabase, pgTargetConfig, seedVariedTypes as seedPg, sql } from '../support/pgdb.js';
import { makeSqlite } from '../support/sqlitedb.js';
import { setUnitCount } from '../support/tamper.js';

interface Engine {
  name: string;
  /** The target's config, in a test folder; the unit whose count is edited, and its true count. */
  setup(dir: string): Promise<{ target: Record<string, unknown>; unit: string; count: number }>;
  /** The scratches of target `target` that exist now. */
  scratches(target: string, dir: string): Promise<string[]>;
}

const prefixOf = (target: string) => `bk_verify_${target}_`;

const ENGINES: Engine[] = [
  {
    name: 'sqlite',
    async setup(dir) {
      makeSqlite(path.join(dir, 'app.sqlite'), 150);
      return { target: { driver: 'sqlite', path: './app.sqlite' }, unit: 'items', count: 150 };
    },
    async scratches(_target, dir) {
      return readdirSync(path.join(dir, 'store')).filter((f) => f.includes('.verify-'));
    },
  },
  {
    name: 'pg_dump',
    async setup() {
      const database = await createPgDatabase('deep');
      await seedPg(database, 40);
      return { target: pgTargetConfig(database), unit: 'public.customers', count: 40 };
    },
    async scratches(target) {
      return (await sql<{ datname: string }>('postgres', 'SELECT datname FROM pg_database')).map((r) => r.datname).filter((n) => n.startsWith(prefixOf(target)));
    },
  },
  {
    name: 'mysqldump',
    async setup() {
      const database = await createMysqlDatabase('deep');
      await seedMysql(database, 30);
      return { target: mysqlTargetConfig(database), unit: 'events', count: 60 };
    },
    async scratches(target) {
      return (await mysql(undefined, 'SELECT schema_name FROM information_schema.schemata')).map((r) => r[0]!).filter((n) => n.startsWith(prefixOf(target)));
    },
  },
  ...(['mongo-json', 'mongodump'] as const).map(
    (driver): Engine => ({
      name: driver,
      async setup() {
        const database = databaseName('deep');
        await seedShop(database, 3000);
        const bin = driver === 'mongodump' ? { bin: mongoInfo().toolsBin } : {};
        return { target: { driver, uri: mongoInfo().uri, database, ...bin }, unit: 'items', count: 3000 };
      },
      async scratches(target) {
        const { databases } = await withClient((client) => client.db('admin').admin().listDatabases({ nameOnly: true }));
        return databases.map((d) => d.name).filter((n) => n.startsWith(prefixOf(target)));
      },
    }),
  ),
];

describe.each(ENGINES)('verify --deep, $name', (engine) => {
  const targetName = `deep${engine.name.replace(/[^a-z]/g, '')}`;

  async function setup() {
    const dir = tempDir();
    const { target, unit, count } = await engine.setup(dir);
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { [targetName]: target } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const backup = await cli('--json', 'backup', targetName);
    expect(backup.code, backup.stderr).toBe(0);
    return { dir, cli, unit, count, id: backup.json().backups[0].id as string };
  }

  it('restores a good backup into a scratch, finds every count as the manifest says, and drops the scratch', async () => {
    const { dir, cli, id } = await setup();
    const plain = await cli('--json', 'verify', id);
    expect(plain.json().results[0].checks).toEqual(['archive', 'checksums', 'manifest']);

    const deep = await cli('--json', 'verify', '--deep', id);
    expect(deep.code, deep.stderr).toBe(0);
    expect(deep.json().results).toEqual([{ id, ok: true, checks: ['archive', 'checksums', 'manifest', 'restore'], error: null, storage: 'local' }]);
    expect(deep.stderr).toContain(`test restore into`);
    expect(await engine.scratches(targetName, dir)).toEqual([]);
  });

  it('fails (exit 3) on an archive whose manifest count does not match its data, naming the unit and both counts', async () => {
    const { dir, cli, id, unit, count } = await setup();
    const store = path.join(dir, 'store');
    setUnitCount(path.join(store, `${id}.zip`), path.join(store, `${id}.json`), unit, count + 7);
    // Every checksum and the sidecar agree with the edited manifest: only a restore can tell.
    const plain = await cli('--json', 'verify', id);
    expect(plain.code, plain.stdout).toBe(0);

    const deep = await cli('--json', 'verify', '--deep', id);
    expect(deep.code, deep.stdout).toBe(3);
    const [result] = deep.json().results;
    expect(result).toMatchObject({ id, ok: false, mismatches: [{ unit, expected: count + 7, actual: count }] });
    expect(result.checks).not.toContain('restore');
    expect(result.error).toContain(`${unit} has ${count} (the manifest says ${count + 7})`);
    const text = await cli('verify', '--deep', id);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain(`${unit} has ${count} (the manifest says ${count + 7})`);
    expect(await engine.scratches(targetName, dir)).toEqual([]);
    const history = await cli('--json', 'history', '--limit', '1');
    expect(history.json().runs[0]).toMatchObject({ command: 'verify', id, ok: false });
  });
});
