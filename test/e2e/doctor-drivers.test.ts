/**
 * doctor's tools and database checks for the mysqldump, mongodump, mongo-json and django-dumpdata
 * drivers against their real engines (MariaDB, the MongoDB test server with MongoDB's own tools,
 * Django on SQLite): each reports its tools with versions and reaches its database; a server that
 * is down, or a database file that is missing, fails `database` with what to do.
 */
import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CliResult, runCli, tempDir, writeConfig } from '../support/cli.js';
import { PROJECT, PYTHON, setupShop } from '../support/django.js';
import { databaseName, mongoInfo } from '../support/mongodb.js';
import { createDatabase, mysqlInfo, mysqlTargetConfig } from '../support/mysqldb.js';
import { freePort } from '../support/ports.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

function checksOf(result: CliResult, target: string): Record<string, Check> {
  const found = result.json<{ targets: { target: string; checks: Check[] }[] }>().targets.find((t) => t.target === target);
  if (!found) throw new Error(`no target ${target} in:\n${result.stdout}`);
  return Object.fromEntries(found.checks.map((c) => [c.name, c]));
}

describe('doctor with the server drivers', () => {
  it('reports each driver\'s tools and reaches each database', async () => {
    const shop = setupShop();
    const erp = await createDatabase('doctor');
    const mongo = databaseName('doctor');
    const config = writeConfig(shop.dir, {
      storage: { path: './store' },
      targets: {
        erp: mysqlTargetConfig(erp),
        fixgsm: { driver: 'mongodump', uri: mongoInfo().uri, database: mongo, bin: mongoInfo().toolsBin },
        mozaik: { driver: 'mongo-json', uri: mongoInfo().uri, database: mongo },
        shop: { driver: 'django-dumpdata', project: PROJECT, python: PYTHON, files: [shop.media] },
      },
    });
    const doctor = await runCli(['-c', config, '--json', 'doctor'], { cwd: shop.dir, env: shop.env });
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);

    const erpChecks = checksOf(doctor, 'erp');
    expect(erpChecks.tools!.detail).toMatch(/^(mariadb-dump|mysqldump) \d+\.\d+\.\d+\S*, (mariadb|mysql) \d+\.\d+\.\d+\S*$/);
    expect(erpChecks.database!.detail).toMatch(new RegExp(`^(MariaDB|MySQL) \\d+\\.\\d+\\.\\d+ at ${mysqlInfo().host}:${mysqlInfo().port}/${erp}$`));
    expect(checksOf(doctor, 'fixgsm').tools!.detail).toMatch(/^mongodump \d+\.\d+\.\d+, mongorestore \d+\.\d+\.\d+$/);
    for (const target of ['fixgsm', 'mozaik']) expect(checksOf(doctor, target).database!.detail).toMatch(new RegExp(`^MongoDB( \\S+)? at 127\\.0\\.0\\.1:\\d+/${mongo}$`));
    expect(checksOf(doctor, 'mozaik').tools!.detail).toMatch(/^mongodb \(node driver\) \d+\.\d+\.\d+$/);
    const shopChecks = checksOf(doctor, 'shop');
    expect(shopChecks.tools!.detail).toMatch(/^python3 3\.\d+\.\d+, django \d+\.\d+/);
    expect(shopChecks.database!.detail).toBe(`Django database "default" (sqlite: ${shop.env.SHOP_DB})`);
    expect(doctor.stdout + doctor.stderr).not.toContain(mysqlInfo().password);

    // The Django database file gone: reported, not created by the check.
    rmSync(shop.env.SHOP_DB!);
    const gone = await runCli(['-c', config, '--json', 'doctor', 'shop'], { cwd: shop.dir, env: shop.env });
    expect(gone.code).toBe(1);
    expect(checksOf(gone, 'shop').database).toMatchObject({ ok: false, detail: `Django's "default" database ${shop.env.SHOP_DB} does not exist`, hint: expect.stringContaining('migrate') });
    expect(existsSync(shop.env.SHOP_DB!)).toBe(false);
  });

  it('fails database for a MariaDB and a MongoDB where nothing listens, passwords hidden', async () => {
    const [mysqlPort, mongoPort] = [await freePort(), await freePort()];
    const password = 'Doctor-db-s3cret';
    const dir = tempDir();
    const config = writeConfig(dir, {
      storage: { path: './store' },
      targets: {
        erp: { driver: 'mysqldump', url: `mysql://backup:${password}@127.0.0.1:${mysqlPort}/erp` },
        mozaik: { driver: 'mongo-json', uri: `mongodb://backup:${password}@127.0.0.1:${mongoPort}/mozaik` },
      },
    });
    const doctor = await runCli(['-c', config, '--json', 'doctor'], { cwd: dir });
    expect(doctor.code).toBe(1);
    expect(checksOf(doctor, 'erp').database).toMatchObject({
      ok: false,
      detail: expect.stringMatching(new RegExp(`^cannot connect to the server at 127\\.0\\.0\\.1:${mysqlPort}/erp: ERROR 2002 `)),
      hint: `Start the MariaDB/MySQL server at 127.0.0.1:${mysqlPort}, or fix the target's "url" (host, port, socket).`,
    });
    expect(checksOf(doctor, 'mozaik').database).toMatchObject({
      ok: false,
      detail: expect.stringMatching(new RegExp(`^cannot connect to MongoDB at 127\\.0\\.0\\.1:${mongoPort}: .*ECONNREFUSED`)),
      hint: `Start MongoDB at 127.0.0.1:${mongoPort}, or fix the target's "uri".`,
    });
    expect(doctor.stdout + doctor.stderr).not.toContain(password);
  });
});
