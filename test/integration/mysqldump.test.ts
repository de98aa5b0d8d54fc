/**
 * mysqldump round trips on a real MariaDB server: the data that comes back is compared table by
 * table (row count and an md5 over every row, computed by the server) with the data backed up,
 * and the views, triggers and procedures must come back with it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { createDatabase, fingerprint, mysql, mysqlInfo, mysqlTargetConfig, programObjects, seedVariedTypes } from '../support/mysqldb.js';

const ROWS = 300;
const OBJECTS = ['routine:add_audit', 'trigger:events_audit', 'view:customer_names'];

async function setup(extra: Record<string, unknown> = {}) {
  const dir = tempDir();
  const database = await createDatabase('rt');
  await seedVariedTypes(database, ROWS);
  const config = writeConfig(dir, { storage: { path: './backups' }, targets: { shop: mysqlTargetConfig(database, extra) } });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  return { dir, database, config, cli };
}

const names = (units: { name: string }[]) => units.map((u) => u.name);

describe('mysqldump driver', () => {
  it('round-trips every table, with its view, trigger and procedure, and counts rows exactly', async () => {
    const { database, cli } = await setup();
    const before = await fingerprint(database);
    expect(Object.keys(before)).toEqual(['audit', 'customers', 'empty_table', 'events']);
    expect(await programObjects(database)).toEqual(OBJECTS);

    const backup = await cli('--json', 'backup', 'shop');
    expect(backup.code, backup.stderr).toBe(0);
    const [record] = backup.json().backups;
    expect(record).toMatchObject({ target: 'shop', driver: 'mysqldump', units: 4, encrypted: false });

    const inspect = (await cli('--json', 'inspect', record.id)).json();
    expect(inspect.units).toEqual([
      { name: 'audit', kind: 'table', count: 2 * ROWS },
      { name: 'customers', kind: 'table', count: ROWS },
      { name: 'empty_table', kind: 'table', count: 0 },
      { name: 'events', kind: 'table', count: 2 * ROWS },
    ]);
    expect(inspect.tool.name).toBe('mariadb-dump');
    expect(inspect.tool.version).toMatch(/^mariadb-dump\s+Ver [\d.]+ Distrib/);
    expect(inspect.entries.map((e: { path: string }) => e.path)).toEqual(['db/dump.sql']);
    expect(inspect.source).toEqual({ database, host: '127.0.0.1', port: mysqlInfo().port });

    // Damage the data and the program objects in every way a restore must undo.
    await mysql(
      database,
      `DELETE FROM events WHERE id % 2 = 0; UPDATE customers SET name = 'changed'; DROP TABLE audit;
       DROP VIEW customer_names; DROP PROCEDURE add_audit; CREATE TABLE stray (x INT)`,
    );
    expect(await fingerprint(database)).not.toEqual(before);

    const restore = await cli('--json', 'restore', 'shop', record.id, '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json().snapshot).toMatch(/^shop_\d{8}_\d{6}(_\d+)?$/);
    const { stray, ...restored } = await fingerprint(database);
    expect(stray).toEqual({ count: 0, md5: null });
    expect(restored).toEqual(before);
    expect(await programObjects(database)).toEqual(OBJECTS);
  });

  it('restores only the tables named with --only', async () => {
    const { database, cli } = await setup();
    const before = await fingerprint(database);
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    await mysql(database, `DELETE FROM events; DELETE FROM audit WHERE id > 10; UPDATE customers SET name = 'kept'; INSERT INTO empty_table VALUES (1, 'kept')`);
    const changed = await fingerprint(database);

    const restore = await cli('--json', 'restore', 'shop', id, '--only', 'events,audit', '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(names(restore.json().units)).toEqual(['audit', 'events']);
    const after = await fingerprint(database);
    expect(after.events).toEqual(before.events);
    expect(after.audit).toEqual(before.audit);
    expect(after.customers).toEqual(changed.customers);
    expect(after.empty_table).toEqual({ count: 1, md5: changed.empty_table!.md5 });
    // The trigger comes back with its table; the view and the procedure were never touched.
    expect(await programObjects(database)).toEqual(OBJECTS);

    const unknown = await cli('restore', 'shop', id, '--only', 'nope', '--yes');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('holds no unit "nope"');
  });

  it('restores --into another database, creating it, and leaves the source alone', async () => {
    const { database, cli } = await setup();
    const before = await fingerprint(database);
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    const copy = `${database}_copy`;
    const restore = await cli('--json', 'restore', 'shop', id, '--into', copy, '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json().snapshot).toBeNull(); // the new database was empty: nothing to snapshot
    expect(await fingerprint(copy)).toEqual(before);
    expect(await programObjects(copy)).toEqual(OBJECTS);
    expect(await fingerprint(database)).toEqual(before);
  });

  it('honours tables and excludeTables', async () => {
    const { cli, database } = await setup({ excludeTables: ['events'] });
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    expect(names((await cli('--json', 'inspect', id)).json().units)).toEqual(['audit', 'customers', 'empty_table']);

    const dir = tempDir();
    const only = writeConfig(dir, { targets: { shop: mysqlTargetConfig(database, { tables: ['customers', 'empty_table'] }) } });
    const backup = await runCli(['-c', only, '--json', 'backup'], { cwd: dir });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.json().backups[0].units).toBe(2);
    const units = (await runCli(['-c', only, '--json', 'inspect', backup.json().backups[0].id], { cwd: dir })).json().units;
    expect(units).toEqual([
      { name: 'customers', kind: 'table', count: ROWS },
      { name: 'empty_table', kind: 'table', count: 0 },
    ]);

    const typo = writeConfig(dir, { targets: { shop: mysqlTargetConfig(database, { tables: ['no_such_table'] }) } }, 'typo.json');
    const failed = await runCli(['-c', typo, '--json', 'backup'], { cwd: dir });
    expect(failed.code).toBe(1);
    expect(failed.json().failures[0].error).toContain('no_such_table');
  });

  it('never puts the password in a child process argv, a log, a sidecar or the output', async () => {
    const info = mysqlInfo();
    const dir = tempDir();
    const bin = path.join(dir, 'bin');
    const argvLog = path.join(dir, 'argv.log');
    const modeLog = path.join(dir, 'mode.log');
    mkdirSync(bin);
    // Wrappers record the exact argv each tool receives and the mode of its option file, then run the real tool.
    for (const tool of ['mariadb-dump', 'mariadb']) {
      writeFileSync(
        path.join(bin, tool),
        `#!/bin/sh\nprintf '%s\\n' "$0 $*" >> '${argvLog}'\ncase "$1" in --defaults-file=*|--defaults-extra-file=*) stat -c '%a' "\${1#*=}" >> '${modeLog}';; esac\nexec '/usr/bin/${tool}' "$@"\n`,
        { mode: 0o755 },
      );
    }
    const database = await createDatabase('secret');
    await seedVariedTypes(database, 20);
    const config = writeConfig(dir, {
      targets: {
        url: { ...mysqlTargetConfig(database), bin },
        keys: { driver: 'mysqldump', host: info.host, port: info.port, user: info.user, password: info.password, database, bin },
      },
    });
    const outputs: string[] = [];
    const runs = [['backup'], ['list'], ['restore', 'url', '--yes'], ['restore', 'keys', '--yes'], ['restore', 'url', '--into', `${database}_into`, '--yes'], ['-v', 'backup', 'keys']];
    for (const args of runs) {
      const result = await runCli(['-c', config, ...args], { cwd: dir });
      expect(result.code, result.stderr).toBe(0);
      outputs.push(result.stdout, result.stderr);
    }
    const argv = readFileSync(argvLog, 'utf8');
    // The target has a password: the option file holding it is the only one the tools read.
    expect(argv).toContain('mariadb-dump --defaults-file=');
    expect(argv).toContain('mariadb --defaults-file=');
    expect(argv).toContain('CREATE DATABASE IF NOT EXISTS');
    expect(new Set(readFileSync(modeLog, 'utf8').trim().split('\n'))).toEqual(new Set(['600']));
    const files = readdirSync(path.join(dir, 'backups'));
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
    const optionFiles = [...argv.matchAll(/--defaults-(?:extra-)?file=(\S+)/g)].map((m) => m[1]!);
    expect(optionFiles.length).toBeGreaterThan(5);
    for (const file of optionFiles) expect(existsSync(file), file).toBe(false);
    const stored = files
      .filter((f) => f.endsWith('.json') || f.endsWith('.jsonl'))
      .map((f) => readFileSync(path.join(dir, 'backups', f), 'utf8'))
      .join('\n');
    for (const text of [argv, stored, ...outputs]) {
      expect(text).not.toContain(info.password);
      expect(text).not.toContain(encodeURIComponent(info.password));
    }
  });

  it('works with host/port/user/password/database keys, and with a socket, whatever password ~/.my.cnf holds', async () => {
    const info = mysqlInfo();
    const dir = tempDir();
    const database = await createDatabase('keys');
    await seedVariedTypes(database, 50);
    const before = await fingerprint(database);
    const common = { driver: 'mysqldump', user: info.user, password: info.password, database };
    const config = writeConfig(dir, {
      targets: { keys: { ...common, host: info.host, port: info.port }, sock: { ...common, socket: info.socket } },
    });
    // The user's own option file is read after any extra one: the target's password must still win.
    writeFileSync(path.join(dir, '.my.cnf'), '[client]\npassword=not-the-password\n');
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir, env: { HOME: dir } });
    const backup = await cli('--json', 'backup');
    expect(backup.code, backup.stderr).toBe(0);
    const [keys, sock] = backup.json().backups;
    expect((await cli('--json', 'inspect', sock.id)).json().source).toEqual({ database, host: 'localhost', path: info.socket });

    await mysql(database, 'DELETE FROM events; SET FOREIGN_KEY_CHECKS = 0; DROP TABLE customers');
    const viaKeys = await cli('--json', 'restore', 'keys', keys.id, '--yes', '--no-snapshot');
    expect(viaKeys.code, viaKeys.stderr).toBe(0);
    expect(await fingerprint(database)).toEqual(before);

    await mysql(database, 'DELETE FROM audit');
    const viaSocket = await cli('--json', 'restore', 'sock', sock.id, '--yes', '--no-snapshot');
    expect(viaSocket.code, viaSocket.stderr).toBe(0);
    expect(await fingerprint(database)).toEqual(before);
  });

  it('auto restores a dropped database, an emptied one, or an empty emptyCheck table, and leaves data alone', async () => {
    const { database, cli, dir } = await setup();
    const before = await fingerprint(database);
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    expect((await cli('--json', 'auto')).json()).toEqual({ results: [{ target: 'shop', action: 'not-empty', id: null }] });

    await mysql(undefined, `DROP DATABASE \`${database}\``);
    const restored = await cli('--json', 'auto');
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.json()).toEqual({ results: [{ target: 'shop', action: 'restored', id }] });
    expect(await fingerprint(database)).toEqual(before);

    // No base tables (a view alone does not count) is empty too.
    await mysql(database, 'DROP TABLE events, audit, customers, empty_table');
    expect((await cli('--json', 'auto')).json().results[0].action).toBe('restored');
    expect(await fingerprint(database)).toEqual(before);

    const checked = writeConfig(dir, { storage: { path: './backups' }, targets: { shop: mysqlTargetConfig(database, { emptyCheck: 'events' }) } }, 'checked.json');
    expect((await runCli(['-c', checked, '--json', 'auto'], { cwd: dir })).json().results[0].action).toBe('not-empty');
    await mysql(database, 'DELETE FROM events');
    const auto = await runCli(['-c', checked, '--json', 'auto'], { cwd: dir });
    expect(auto.json().results[0], auto.stderr).toEqual({ target: 'shop', action: 'restored', id });
    expect(await fingerprint(database)).toEqual(before);
  });
});
