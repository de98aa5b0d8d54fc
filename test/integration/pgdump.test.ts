/**
 * pg_dump round trips on a real PostgreSQL cluster: the data that comes back is compared table by
 * table (row count and an md5 over every row) with the data that was backed up.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { createDatabase, fingerprint, pgInfo, pgTargetConfig, seedVariedTypes, sql } from '../support/pgdb.js';

async function setup(format: 'custom' | 'plain', extra: Record<string, unknown> = {}) {
  const dir = tempDir();
  const database = await createDatabase(`rt_${format}`);
  await seedVariedTypes(database);
  const config = writeConfig(dir, { storage: { path: './backups' }, targets: { crm: pgTargetConfig(database, { format, ...extra }) } });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  return { dir, database, config, cli };
}

describe('pg_dump driver', () => {
  for (const format of ['custom', 'plain'] as const) {
    it(`round-trips every table in ${format} format`, async () => {
      const { database, cli } = await setup(format);
      const before = await fingerprint(database);
      expect(Object.keys(before)).toEqual(['public.customers', 'public.events', 'sales.orders']);

      const backup = await cli('--json', 'backup', 'crm');
      expect(backup.code, backup.stderr).toBe(0);
      const [record] = backup.json().backups;
      expect(record).toMatchObject({ target: 'crm', driver: 'pg_dump', units: 3, encrypted: false });

      // Damage the data in every way a restore must undo.
      await sql(database, `DELETE FROM public.events WHERE id % 2 = 0; UPDATE public.customers SET name = 'changed'; DROP TABLE sales.orders; CREATE TABLE public.stray (x int)`);
      expect(await fingerprint(database)).not.toEqual(before);

      const restore = await cli('--json', 'restore', 'crm', record.id, '--yes');
      expect(restore.code, restore.stderr).toBe(0);
      const after = await fingerprint(database);
      const { 'public.stray': _stray, ...restored } = after;
      expect(restored).toEqual(before);
      expect(restore.json().snapshot).toMatch(/^crm_\d{8}_\d{6}(_\d+)?$/);
    });
  }

  it('records exact row counts and the tool version in the manifest', async () => {
    const { cli } = await setup('custom');
    const backup = await cli('--json', 'backup', 'crm');
    const id = backup.json().backups[0].id;
    const inspect = (await cli('--json', 'inspect', id)).json();
    expect(inspect.units).toEqual([
      { name: 'public.customers', kind: 'table', count: 500 },
      { name: 'public.events', kind: 'table', count: 1000 },
      { name: 'sales.orders', kind: 'table', count: 500 },
    ]);
    expect(inspect.tool.name).toBe('pg_dump');
    expect(inspect.tool.version).toMatch(/^pg_dump \(PostgreSQL\) \d+/);
    expect(inspect.entries.map((e: { path: string }) => e.path)).toEqual(['db/dump.pgc']);
    expect(inspect.source).toEqual({ database: expect.any(String), host: '127.0.0.1', port: pgInfo().port });
  });

  it('restores only the tables named with --only (a bare name means public)', async () => {
    const { database, cli } = await setup('custom');
    const before = await fingerprint(database);
    const id = (await cli('--json', 'backup', 'crm')).json().backups[0].id;
    await sql(database, `DELETE FROM public.events; DELETE FROM public.customers WHERE id > 250; UPDATE sales.orders SET note = 'kept'`);
    const changed = await fingerprint(database);

    const restore = await cli('--json', 'restore', 'crm', id, '--only', 'events,sales.orders', '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json().units.map((u: { name: string }) => u.name)).toEqual(['public.events', 'sales.orders']);
    const after = await fingerprint(database);
    expect(after['public.events']).toEqual(before['public.events']);
    expect(after['sales.orders']).toEqual(before['sales.orders']);
    expect(after['public.customers']).toEqual(changed['public.customers']);

    const unknown = await cli('restore', 'crm', id, '--only', 'nope', '--yes');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('holds no unit "nope"');
  });

  it('restores --into another database, creating it, and leaves the source alone', async () => {
    const { database, cli } = await setup('custom');
    const before = await fingerprint(database);
    const id = (await cli('--json', 'backup', 'crm')).json().backups[0].id;
    const copy = `${database}_copy`;
    const restore = await cli('--json', 'restore', 'crm', id, '--into', copy, '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json().snapshot).toBeNull(); // the new database was empty: nothing to snapshot
    expect(await fingerprint(copy)).toEqual(before);
    expect(await fingerprint(database)).toEqual(before);
  });

  it('honours tables and excludeTables', async () => {
    const { cli, database } = await setup('custom', { excludeTables: ['events'] });
    const id = (await cli('--json', 'backup', 'crm')).json().backups[0].id;
    const units = (await cli('--json', 'inspect', id)).json().units.map((u: { name: string }) => u.name);
    expect(units).toEqual(['public.customers', 'sales.orders']);

    const dir = tempDir();
    const only = writeConfig(dir, { targets: { crm: pgTargetConfig(database, { tables: ['sales.orders'] }) } });
    const backup = await runCli(['-c', only, '--json', 'backup'], { cwd: dir });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.json().backups[0].units).toBe(1);

    const typo = writeConfig(dir, { targets: { crm: pgTargetConfig(database, { tables: ['no_such_table'] }) } }, 'typo.json');
    const failed = await runCli(['-c', typo, '--json', 'backup'], { cwd: dir });
    expect(failed.code).toBe(1);
    expect(failed.json().failures[0].error).toContain('no matching tables');
  });

  it('takes a pre-restore snapshot that restores the state before the restore', async () => {
    const { database, cli } = await setup('custom');
    const id = (await cli('--json', 'backup', 'crm')).json().backups[0].id;
    await sql(database, `INSERT INTO sales.orders VALUES (100000, 1, 1, 'made after the backup')`);
    const latest = await fingerprint(database);
    const restore = await cli('--json', 'restore', 'crm', id, '--yes');
    const snapshot = restore.json().snapshot;
    expect((await cli('--json', 'inspect', snapshot)).json().tags).toEqual(['pre-restore']);
    // "latest" skips pre-restore snapshots: it is still the backup we made.
    const dry = await cli('--json', 'restore', 'crm', '--dry-run');
    expect(dry.json()).toMatchObject({ id, dryRun: true, snapshot: null });
    // Restoring the snapshot brings back the row made after the backup.
    const back = await cli('--json', 'restore', 'crm', snapshot, '--yes', '--no-snapshot');
    expect(back.code, back.stderr).toBe(0);
    expect(await fingerprint(database)).toEqual(latest);
  });

  it('never puts the password in a child process argv, a log, a sidecar or the output', async () => {
    const info = pgInfo();
    const dir = tempDir();
    const bin = path.join(dir, 'bin');
    const argvLog = path.join(dir, 'argv.log');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(bin);
    // Wrappers record the exact argv each tool receives, then run the real tool.
    for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
      writeFileSync(path.join(bin, tool), `#!/bin/sh\nprintf '%s\\n' "$0 $*" >> '${argvLog}'\nexec '${info.binDir}/${tool}' "$@"\n`, { mode: 0o755 });
    }
    const database = await createDatabase('secret');
    await seedVariedTypes(database, 20);
    const config = writeConfig(dir, {
      targets: {
        url: { ...pgTargetConfig(database), bin },
        keys: { driver: 'pg_dump', host: info.host, port: info.port, user: info.user, password: info.password, database, bin, format: 'plain' },
      },
    });
    const outputs: string[] = [];
    for (const args of [['backup'], ['list'], ['restore', 'url', '--yes'], ['restore', 'keys', '--yes'], ['-v', 'backup', 'keys']]) {
      const result = await runCli(['-c', config, ...args], { cwd: dir });
      expect(result.code, result.stderr).toBe(0);
      outputs.push(result.stdout, result.stderr);
    }
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv).toContain('pg_dump');
    expect(argv).toContain('pg_restore');
    expect(argv).toContain('psql');
    const encoded = encodeURIComponent(info.password);
    const { readdirSync } = await import('node:fs');
    const stored = readdirSync(path.join(dir, 'backups'))
      .filter((f) => f.endsWith('.json') || f.endsWith('.jsonl'))
      .map((f) => readFileSync(path.join(dir, 'backups', f), 'utf8'))
      .join('\n');
    for (const text of [argv, stored, ...outputs]) {
      expect(text).not.toContain(info.password);
      expect(text).not.toContain(encoded);
    }
  });
});
