/**
 * MongoDB round trips for both drivers: mongodump (the real mongodump/mongorestore 100.7.0) and
 * mongo-json (the official Node driver). They run against the in-memory wire-protocol test server,
 * or against a real server when BACKUPKIT_TEST_MONGO_URL is set. Every document is compared as
 * canonical Extended JSON, sorted by _id, and the indexes by name, key and uniqueness.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { databaseName, mongoFingerprint, mongoInfo, seedShop, typeZoo, withClient } from '../support/mongodb.js';
import { replaceEntry } from '../support/tamper.js';

const DRIVERS = ['mongodump', 'mongo-json'] as const;

async function setup(driver: (typeof DRIVERS)[number], extra: Record<string, unknown> = {}) {
  const dir = tempDir();
  const database = databaseName(driver.replace('-', ''));
  await seedShop(database);
  const target = { driver, uri: mongoInfo().uri, database, ...(driver === 'mongodump' ? { bin: mongoInfo().toolsBin } : {}), ...extra };
  const config = writeConfig(dir, { storage: { path: './store' }, targets: { shop: target } });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  return { dir, database, cli, config };
}

describe.each(DRIVERS)('%s driver', (driver) => {
  it('backs up, counts the documents, and restores every document and index', async () => {
    const { database, cli } = await setup(driver);
    const before = await mongoFingerprint(database);
    expect(before.items!.docs).toHaveLength(50_000);

    const backup = await cli('--json', 'backup', 'shop');
    expect(backup.code, backup.stderr).toBe(0);
    const id = backup.json().backups[0].id;
    const inspect = (await cli('--json', 'inspect', id)).json();
    expect(inspect.units).toEqual([
      { name: 'items', kind: 'collection', count: 50_000 },
      { name: 'zoo', kind: 'collection', count: typeZoo().length },
    ]);
    expect(inspect.tool.name).toBe(driver === 'mongodump' ? 'mongodump' : 'mongodb (node driver)');

    await withClient(async (client) => {
      await client.db(database).collection('items').deleteMany({ qty: { $gt: 10 } });
      await client.db(database).collection('zoo').drop();
      await client.db(database).collection('items').dropIndex('qty_updated');
    });
    expect(await mongoFingerprint(database)).not.toEqual(before);

    const restore = await cli('--json', 'restore', 'shop', id, '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json().snapshot).toMatch(/^shop_/);
    expect(await mongoFingerprint(database)).toEqual(before);
  });

  it('restores --only one collection and --into another database', async () => {
    const { database, cli } = await setup(driver);
    const before = await mongoFingerprint(database);
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    await withClient(async (client) => {
      await client.db(database).collection('items').deleteMany({});
      await client.db(database).collection('zoo').deleteMany({});
    });
    const only = await cli('--json', 'restore', 'shop', id, '--only', 'zoo', '--yes', '--no-snapshot');
    expect(only.code, only.stderr).toBe(0);
    const after = await mongoFingerprint(database);
    expect(after.zoo).toEqual(before.zoo);
    expect(after.items!.docs).toEqual([]);

    const copy = `${database}_copy`;
    const into = await cli('--json', 'restore', 'shop', id, '--into', copy, '--yes');
    expect(into.code, into.stderr).toBe(0);
    expect(into.json().snapshot).toBeNull();
    expect(await mongoFingerprint(copy)).toEqual(before);
  });

  it('keeps the URI and its password out of every argv, log and sidecar', async () => {
    const real = mongoInfo().real;
    const marker = 'appName=bk-secret-marker';
    const dir = tempDir();
    const database = databaseName('secret');
    await withClient((client) => client.db(database).collection('c').insertOne({ x: 1 }));
    const argvLog = path.join(dir, 'argv.log');
    let bin: string | undefined;
    if (driver === 'mongodump') {
      bin = path.join(dir, 'bin');
      mkdirSync(bin);
      for (const tool of ['mongodump', 'mongorestore']) {
        writeFileSync(path.join(bin, tool), `#!/bin/sh\nprintf '%s\\n' "$0 $*" >> '${argvLog}'\nexec '${mongoInfo().toolsBin}/${tool}' "$@"\n`, { mode: 0o755 });
      }
    }
    const uri = mongoInfo().uri + (mongoInfo().uri.includes('?') ? '&' : '/?') + marker;
    const config = writeConfig(dir, { targets: { s: { driver, uri, database, ...(bin ? { bin } : {}) } } });
    const outputs: string[] = [];
    for (const args of [['-v', 'backup'], ['-v', 'restore', 's', '--yes'], ['list']]) {
      const result = await runCli(['-c', config, ...args], { cwd: dir });
      expect(result.code, result.stderr).toBe(0);
      outputs.push(result.stdout, result.stderr);
    }
    const stored = readdirSync(path.join(dir, 'backups'))
      .filter((f) => f.endsWith('.json') || f.endsWith('.jsonl'))
      .map((f) => readFileSync(path.join(dir, 'backups', f), 'utf8'));
    const argv = driver === 'mongodump' ? readFileSync(argvLog, 'utf8') : '';
    if (driver === 'mongodump') expect(argv).toContain('--config=');
    const password = real ? new URL(mongoInfo().uri.replace(/^mongodb(\+srv)?:/, 'http:')).password : '';
    for (const text of [argv, ...stored, ...outputs]) {
      expect(text).not.toContain(marker);
      if (password) expect(text).not.toContain(password);
    }
    // No temporary config file is left behind.
    expect(readdirSync(path.join(dir, 'backups')).filter((f) => f.includes('yaml'))).toEqual([]);
  });
});

describe('mongodump driver and earlier archives', () => {
  it('mongo-json restore inserts in order and stops at the first failed batch, sending none after it', async () => {
    const { dir, database, cli } = await setup('mongo-json');
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    const store = path.join(dir, 'store');
    const lines = execFileSync('unzip', ['-p', path.join(store, `${id}.zip`), 'db/items.jsonl'], { maxBuffer: 1 << 28 }).toString('utf8').split('\n');
    // A copy of the first document in the third batch of 1,000: the documents before it go in,
    // it fails on its _id, and the batches after it must never be sent.
    lines.splice(2600, 0, lines[0]!);
    const tampered = path.join(dir, 'items.jsonl');
    writeFileSync(tampered, lines.join('\n'));
    replaceEntry(path.join(store, `${id}.zip`), path.join(store, `${id}.json`), 'db/items.jsonl', tampered, 'deflated');

    const restore = await cli('restore', 'shop', id, '--yes', '--no-snapshot', '--only', 'items');
    expect(restore.code).toBe(1);
    expect(restore.stderr).toMatch(/duplicate key/);
    await withClient(async (client) => {
      const docs = await client.db(database).collection('items').find({}, { projection: { sku: 1 } }).sort({ _id: 1 }).toArray();
      expect(docs.map((d) => d.sku)).toEqual(lines.slice(0, 2600).map((line) => (JSON.parse(line) as { sku: string }).sku));
    });
  });

  it('restores an archive whose entry is the plain mongodump archive, deflated in the zip (as made before)', async () => {
    const { dir, database, cli } = await setup('mongodump');
    const before = await mongoFingerprint(database);
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    const store = path.join(dir, 'store');
    const plain = path.join(dir, 'dump.archive');
    writeFileSync(plain, gunzipSync(execFileSync('unzip', ['-p', path.join(store, `${id}.zip`), 'db/dump.archive.gz'], { maxBuffer: 1 << 28 })));
    replaceEntry(path.join(store, `${id}.zip`), path.join(store, `${id}.json`), 'db/dump.archive.gz', plain, 'deflated', 'db/dump.archive');
    const entries = (await cli('--json', 'inspect', id)).json().entries.map((e: { path: string }) => e.path);
    expect(entries).toEqual(['db/dump.archive']);

    await withClient((client) => client.db(database).dropDatabase());
    const restore = await cli('--json', 'restore', 'shop', id, '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(await mongoFingerprint(database)).toEqual(before);
  });
});
