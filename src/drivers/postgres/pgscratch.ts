/**
 * `verify --deep` on PostgreSQL: the backup is restored into a scratch database on the target's
 * server (created by the restore, as `restore --into` does), each table's rows are counted there,
 * and the database is dropped, connections and all.
 */
import type { Unit } from '../../core/manifest.js';
import { type PgOptions, pgConnection, quoteIdent, withClient } from './pgconn.js';

/** Rows of each unit (`schema.table`) in the database `options` name, as pg_dump wrote them: the table's own, without its children. */
export async function countTables(options: PgOptions, units: Unit[]): Promise<(number | null)[]> {
  const conn = pgConnection(options);
  return withClient(conn, conn.database, async (client) => {
    const { rows } = await client.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY($1::text[])`,
      [units.map((u) => u.name)],
    );
    const tables = new Map(rows.map((r) => [`${r.schema}.${r.name}`, r]));
    const counts: (number | null)[] = [];
    for (const unit of units) {
      const table = tables.get(unit.name);
      if (!table) {
        counts.push(null);
        continue;
      }
      const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${quoteIdent(table.schema)}.${quoteIdent(table.name)}`);
      counts.push(Number(result.rows[0]!.n));
    }
    return counts;
  });
}

export async function listDatabases(options: PgOptions, prefix: string): Promise<string[]> {
  const conn = pgConnection(options);
  return withClient(conn, 'postgres', async (client) => {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 ORDER BY 1', [prefix]);
    return rows.map((r) => r.datname);
  });
}

/** Drop `name` if it is there, ending the sessions still in it (a killed pg_restore's, say). */
export async function dropDatabase(options: PgOptions, name: string): Promise<void> {
  const conn = pgConnection(options);
  await withClient(conn, 'postgres', async (client) => {
    const version = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
    if (version >= 130000) {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      return;
    }
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
  });
}
