/**
 * `verify --deep` on MySQL and MariaDB: the backup is restored into a scratch database on the
 * target's server (created by the restore, as `restore --into` does), each table's rows are
 * counted there, and the database is dropped. Statements go to the client on its stdin.
 */
import type { Unit } from '../../core/manifest.js';

/** Runs SQL and returns the rows of its results, tab-separated fields, in order. */
export type Query = (sql: string) => Promise<string[][]>;

export function quoteIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

export function quoteString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** Rows of each unit (a base table) in `database`; null for a table that is not there. */
export async function countTables(query: Query, database: string, units: Unit[]): Promise<(number | null)[]> {
  const present = new Set(
    (await query(`SELECT table_name FROM information_schema.tables WHERE table_schema = ${quoteString(database)} AND table_type = 'BASE TABLE';`)).map((row) => row[0]!),
  );
  const counted = units.filter((u) => present.has(u.name));
  const rows = counted.length === 0 ? [] : await query(counted.map((u) => `SELECT COUNT(*) FROM ${quoteIdent(database)}.${quoteIdent(u.name)};`).join('\n'));
  const counts = new Map(counted.map((u, i) => [u.name, Number(rows[i]?.[0])]));
  return units.map((u) => counts.get(u.name) ?? null);
}

export async function listDatabases(query: Query, prefix: string): Promise<string[]> {
  const rows = await query(`SELECT schema_name FROM information_schema.schemata WHERE LEFT(schema_name, ${prefix.length}) = ${quoteString(prefix)} ORDER BY 1;`);
  return rows.map((row) => row[0]!);
}

export async function dropDatabase(query: Query, name: string): Promise<void> {
  await query(`DROP DATABASE IF EXISTS ${quoteIdent(name)};`);
}
