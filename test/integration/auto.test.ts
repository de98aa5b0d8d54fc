/**
 * auto on every driver: empty the database and auto restores the newest backup with identical
 * data; run again and it reports not-empty; corrupt the newest archive, empty the database, and
 * auto restores the previous backup.
 */
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { PROJECT, PYTHON, manage, setupShop, shopFingerprint } from '../support/django.js';
import { databaseName, mongoFingerprint, mongoInfo, seedShop, withClient } from '../support/mongodb.js';
import { createDatabase, fingerprint, pgTargetConfig, seedVariedTypes, sql } from '../support/pgdb.js';
import * as my from '../support/mysqldb.js';
import { makeSqlite, sqliteRows } from '../support/sqlitedb.js';
import { flipByte } from '../support/tamper.js';

interface Subject {
  target: Record<string, unknown>;
  env?: Record<string, string>;
  dir?: string;
  snapshot(): Promise<unknown>;
  change(): Promise<void>;
  empty(): Promise<void>;
}

const subjects: Record<string, () => Promise<Subject>> = {
  pg_dump: async () => {
    const database = await createDatabase('auto');
    await seedVariedTypes(database, 50);
    return {
      target: pgTargetConfig(database),
      snapshot: () => fingerprint(database),
      change: async () => void (await sql(database, `INSERT INTO sales.orders VALUES (99999, 1, 1, 'second state')`)),
      empty: async () => void (await sql('postgres', `DROP DATABASE "${database}" WITH (FORCE)`)),
    };
  },
  mysqldump: async () => {
    const database = await my.createDatabase('auto');
    await my.seedVariedTypes(database, 50);
    return {
      target: my.mysqlTargetConfig(database),
      snapshot: () => my.fingerprint(database),
      change: async () => void (await my.mysql(database, "UPDATE `customers` SET `name` = 'second state' WHERE `id` = 1")),
      empty: async () => void (await my.mysql(undefined, `DROP DATABASE ${my.quoteIdent(database)}`)),
    };
  },
  sqlite: async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.sqlite');
    makeSqlite(file, 20);
    return {
      dir,
      target: { driver: 'sqlite', path: file },
      snapshot: async () => sqliteRows(file),
      change: async () => {
        const { default: Database } = await import('better-sqlite3');
        const db = new Database(file);
        db.exec("INSERT INTO items (name) VALUES ('second state')");
        db.close();
      },
      empty: async () => rmSync(file),
    };
  },
  'django-dumpdata': async () => {
    const shop = setupShop();
    return {
      dir: shop.dir,
      env: shop.env,
      target: { driver: 'django-dumpdata', project: PROJECT, python: PYTHON, emptyCheck: 'store.product', flush: true },
      snapshot: async () => shopFingerprint(shop),
      change: async () => void manage(shop, ['shell', '-c', 'from store.models import Tag\nTag.objects.create(name="second state")']),
      empty: async () => void manage(shop, ['flush', '--noinput']),
    };
  },
  ...Object.fromEntries(
    (['mongodump', 'mongo-json'] as const).map((driver) => [
      driver,
      async (): Promise<Subject> => {
        const database = databaseName(`auto${driver.replace('-', '')}`);
        await seedShop(database, 500);
        return {
          target: { driver, uri: mongoInfo().uri, database, ...(driver === 'mongodump' ? { bin: mongoInfo().toolsBin } : {}) },
          snapshot: () => mongoFingerprint(database),
          change: () => withClient(async (c) => void (await c.db(database).collection('zoo').insertOne({ _id: 'second state' } as never))),
          empty: () => withClient(async (c) => void (await c.db(database).dropDatabase())),
        };
      },
    ]),
  ),
};

describe.each(Object.keys(subjects))('auto with %s', (driver) => {
  it('restores an empty database, is idempotent, and skips a corrupt newest archive', async () => {
    const subject = await subjects[driver]!();
    const dir = subject.dir ?? tempDir();
    const config = writeConfig(dir, { storage: { path: './autostore' }, targets: { app: subject.target } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir, env: subject.env ?? {} });

    const first = await subject.snapshot();
    const b1 = (await cli('--json', 'backup', 'app')).json().backups[0].id;
    await subject.change();
    const second = await subject.snapshot();
    expect(second).not.toEqual(first);
    const b2 = (await cli('--json', 'backup', 'app')).json().backups[0].id;
    expect(b2).not.toBe(b1);

    const full = await cli('--json', 'auto');
    expect(full.code, full.stderr).toBe(0);
    expect(full.json()).toEqual({ results: [{ target: 'app', action: 'not-empty', id: null }] });

    await subject.empty();
    const restored = await cli('--json', 'auto');
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.json()).toEqual({ results: [{ target: 'app', action: 'restored', id: b2 }] });
    expect(await subject.snapshot()).toEqual(second);
    // No snapshot was taken: there was nothing to lose.
    expect(readdirSync(path.join(dir, 'autostore')).filter((f) => f.endsWith('.zip'))).toHaveLength(2);

    const again = await cli('--json', 'auto');
    expect(again.json().results[0].action).toBe('not-empty');

    const archive = path.join(dir, 'autostore', `${b2}.zip`);
    flipByte(archive, 100);
    await subject.empty();
    const fallback = await cli('--json', 'auto');
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(fallback.json().results[0]).toEqual({ target: 'app', action: 'restored', id: b1 });
    expect(fallback.stderr).toContain(`skipping ${b2}`);
    expect(await subject.snapshot()).toEqual(first);
  });
});

describe('auto without backups', () => {
  it('warns and exits 0, or exits 1 with --require-backup', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { targets: { app: { driver: 'sqlite', path: './missing.sqlite' } } });
    const warn = await runCli(['-c', config, '--json', 'auto'], { cwd: dir });
    expect(warn.code).toBe(0);
    expect(warn.json()).toEqual({ results: [{ target: 'app', action: 'no-backup', id: null }] });
    expect(warn.stderr).toContain('no backup to restore');
    const strict = await runCli(['-c', config, '--json', 'auto', '--require-backup'], { cwd: dir });
    expect(strict.code).toBe(1);
    expect(strict.json().results[0].action).toBe('no-backup');
  });
});
