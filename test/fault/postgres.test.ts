/**
 * Faults around a PostgreSQL server of this file's own (the shared one is never stopped): the
 * server shut down (fast) mid-dump and mid-restore, pg_dump killed mid-dump, and backupkit itself
 * killed while pg_restore loads. Each run ends with exit 1 naming the tool, nothing half-listed
 * and no partial file, and the database holds its old data or the restored data, never a mix.
 *
 * To land mid-stream every time, whatever the machine's speed, backupkit is paused (SIGSTOP) as
 * the tool starts: the tool then stalls on its full pipe in the middle of the data (pg_stat_activity
 * shows its COPY waiting), the fault strikes there, and backupkit is let go (SIGCONT).
 */
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../support/postgres.js';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { alive, childrenOf, lockFiles, partialFiles, startCli, until } from '../support/faults.js';

let server: PgServer;
const DATABASE = 'shop';

async function query<T extends pg.QueryResultRow = any>(text: string, database = DATABASE): Promise<T[]> {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database });
  client.on('error', () => undefined); // a server shut down under an idle client is not this test's failure
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Every table's row count and an md5 of its rows: equal fingerprints, equal data. */
async function fingerprint(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { name } of await query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)) {
    const [row] = await query<{ n: string; md5: string | null }>(`SELECT count(*) AS n, md5(string_agg(t::text, ',' ORDER BY t::text)) AS md5 FROM "${name}" t`);
    out[name] = `${row!.n} rows, ${row!.md5}`;
  }
  return out;
}

/** The session of `tool` (by application_name) as pg_stat_activity shows it, if any. */
async function session(tool: string): Promise<{ pid: number; state: string; query: string; wait_event_type: string | null; wait_event: string | null } | undefined> {
  const [row] = await query(`SELECT pid, state, query, wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = '${tool}' AND datname = '${DATABASE}'`);
  return row;
}

/** The tool's COPY is under way and stalled on backupkit (paused): mid-data, for certain. */
async function stalledMidCopy(tool: 'pg_dump' | 'pg_restore'): Promise<void> {
  const waitEvent = tool === 'pg_dump' ? 'ClientWrite' : 'ClientRead';
  await until(`${tool} to stall in the middle of a COPY`, async () => {
    const s = await session(tool);
    return s !== undefined && s.state === 'active' && /^COPY/i.test(s.query) && s.wait_event === waitEvent;
  });
}

function setup() {
  const dir = tempDir();
  const url = `postgres://${server.user}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${DATABASE}`;
  const config = writeConfig(dir, { storage: { path: './store' }, targets: { shop: { driver: 'pg_dump', url, bin: server.binDir } } });
  const store = path.join(dir, 'store');
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const start = (...args: string[]) => startCli(['-c', config, ...args], { cwd: dir });
  return { dir, store, cli, start };
}

/** Start `args` and pause backupkit as soon as `tool` has connected: the tool then stalls mid-data. */
async function startPaused(start: (...args: string[]) => ReturnType<typeof startCli>, tool: 'pg_dump' | 'pg_restore', args: string[]) {
  const run = start(...args);
  await until(`${tool} to connect`, async () => (await session(tool)) !== undefined);
  process.kill(run.pid, 'SIGSTOP');
  return run;
}

beforeAll(async () => {
  server = await startPostgres();
  await query(`CREATE DATABASE ${DATABASE}`, 'postgres');
  // About 25 MB of table data: far more than the pipe and socket buffers a stalled tool can fill.
  await query(`
    CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, note text);
    INSERT INTO accounts SELECT i, 'account ' || i, repeat(md5(i::text), 4) FROM generate_series(1, 120000) AS i;
    CREATE TABLE events (id bigint PRIMARY KEY, account_id int REFERENCES accounts (id), payload text);
    INSERT INTO events SELECT i, 1 + i % 120000, md5((i * 7)::text) FROM generate_series(1, 150000) AS i;
    CREATE TABLE settings (key text PRIMARY KEY, value text);
    INSERT INTO settings VALUES ('currency', 'EUR'), ('vat', '19'), ('locale', 'de_DE');
  `);
});

afterAll(async () => {
  await server?.stop();
});

describe('the PostgreSQL server stops', () => {
  it('mid-dump: exit 1 naming pg_dump and its stderr, nothing listed, no partial file; the next run works', async () => {
    const { store, cli, start } = setup();
    const run = await startPaused(start, 'pg_dump', ['--json', 'backup', 'shop']);
    await stalledMidCopy('pg_dump');
    await server.halt();
    process.kill(run.pid, 'SIGCONT');
    const result = await run.done;
    try {
      expect(result.code, result.stderr).toBe(1);
      const error: string = result.json().failures[0].error;
      expect(error).toMatch(/^pg_dump .* exited with code 1:/);
      expect(error).toContain('pg_dump: error: Dumping the contents of table');
      expect(error).toMatch(/server closed the connection|terminating connection/);
      expect(error).not.toContain(server.password);
      expect((await cli('--json', 'list')).json().stats.count).toBe(0);
      expect(partialFiles(store)).toEqual([]);
      expect(lockFiles(store)).toEqual([]);
    } finally {
      await server.start();
    }
    const next = await cli('--json', 'backup', 'shop');
    expect(next.code, next.stderr).toBe(0);
    expect((await cli('--json', 'list')).json().stats.count).toBe(1);
  });

  it('mid-restore: exit 1 naming pg_restore; once it is back the database holds its old data, untouched', async () => {
    const { store, cli, start } = setup();
    const backup = await cli('--json', 'backup', 'shop');
    expect(backup.code, backup.stderr).toBe(0);
    const id: string = backup.json().backups[0].id;
    const restored = await fingerprint();
    await query(`DELETE FROM events WHERE id > 140000; UPDATE settings SET value = 'USD' WHERE key = 'currency'; INSERT INTO settings VALUES ('new', 'x')`);
    const old = await fingerprint();
    expect(old).not.toEqual(restored);

    const run = await startPaused(start, 'pg_restore', ['--json', 'restore', 'shop', id, '--yes', '--no-snapshot']);
    await stalledMidCopy('pg_restore');
    await server.halt();
    process.kill(run.pid, 'SIGCONT');
    const result = await run.done;
    await server.start();
    expect(result.code, result.stderr).toBe(1);
    expect(result.json().error.message).toMatch(/^pg_restore .* exited with code 1:\n.*pg_restore: error:/s);
    // --single-transaction: the half-loaded data went with the transaction.
    expect(await fingerprint()).toEqual(old);
    expect(partialFiles(store)).toEqual([]);
    expect(lockFiles(store)).toEqual([]);
  });
});

describe('processes killed', () => {
  it('pg_dump SIGKILLed mid-dump: exit 1 saying it was killed, nothing listed, no partial file', async () => {
    const { store, cli, start } = setup();
    const run = await startPaused(start, 'pg_dump', ['--json', 'backup', 'shop']);
    await stalledMidCopy('pg_dump');
    const [dump] = childrenOf(run.pid).filter((c) => c.name === 'pg_dump');
    expect(dump).toBeDefined();
    process.kill(dump!.pid, 'SIGKILL');
    process.kill(run.pid, 'SIGCONT');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(1);
    expect(result.json().failures[0].error).toMatch(/^pg_dump .* was killed by SIGKILL/);
    expect((await cli('--json', 'list')).json().stats.count).toBe(0);
    expect(partialFiles(store)).toEqual([]);
    expect(lockFiles(store)).toEqual([]);
  });

  it('backupkit SIGKILLed while pg_restore loads: the database is untouched, and the next run takes over the lock and restores', async () => {
    const { store, cli, start } = setup();
    const backup = await cli('--json', 'backup', 'shop');
    expect(backup.code, backup.stderr).toBe(0);
    const id: string = backup.json().backups[0].id;
    const restored = await fingerprint();
    await query(`DELETE FROM events WHERE id % 1000 = 0; UPDATE settings SET value = 'CHF' WHERE key = 'currency'`);
    const old = await fingerprint();
    expect(old).not.toEqual(restored);

    const run = await startPaused(start, 'pg_restore', ['--json', 'restore', 'shop', id, '--yes', '--no-snapshot']);
    await stalledMidCopy('pg_restore');
    const [tool] = childrenOf(run.pid).filter((c) => c.name === 'pg_restore');
    expect(tool).toBeDefined();
    process.kill(run.pid, 'SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    // Its input ends early: pg_restore fails and its transaction is rolled back.
    await until('pg_restore to end', () => !alive(tool!.pid));
    await until('its session to end', async () => (await session('pg_restore')) === undefined);
    expect(await fingerprint()).toEqual(old);
    expect(lockFiles(store)).toEqual(['shop.lock']); // the dead run's, taken over below

    const again = await cli('--json', 'restore', 'shop', id, '--yes', '--no-snapshot');
    expect(again.code, again.stderr).toBe(0);
    expect(await fingerprint()).toEqual(restored);
    expect(lockFiles(store)).toEqual([]);
    expect(partialFiles(store)).toEqual([]);
  });
});
