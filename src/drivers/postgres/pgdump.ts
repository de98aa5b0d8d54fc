/**
 * pg_dump driver. Manual: https://www.postgresql.org/docs/current/app-pgdump.html
 *
 * Config keys:
 *   url            postgres://user:password@host:port/database?sslmode=... (or the keys below)
 *   host, port, user, password, database
 *   format         "custom" (default; db/dump.pgc, pg_restore) or "plain" (db/dump.sql, psql)
 *   tables         only these tables ("users" = public.users, "sales.orders")
 *   excludeTables  all tables but these
 *   emptyCheck     a table whose emptiness means "the database is empty" (for auto)
 *
 * The row counts in the manifest are read from the dump as it streams (pgcount.ts), so they are
 * exactly what the archive holds, at no cost to the database. A custom-format dump is written
 * uncompressed (--compress=0) and compressed by backupkit into pg_dump's own compressed format on
 * every core, where pg_dump would compress on one (pgcompress.ts); the entry is stored, so pg_restore
 * reads it as pg_dump's own. The password reaches the tools only through PGPASSWORD.
 */
import { z } from 'zod';
import { badEscapeProblem, serverConnectionShape } from '../connection.js';
import type { Driver } from '../../core/driver.js';
import { UsageError } from '../../core/errors.js';
import type { Unit } from '../../core/manifest.js';
import {
  DatabaseMissingError,
  type PgOptions,
  describeConnection,
  exactTablePattern,
  libpqEnv,
  libpqString,
  loadPg,
  pgConnection,
  pgPing,
  quoteIdent,
  splitTableName,
  withClient,
} from './pgconn.js';
import { PgCustomCompressor } from './pgcompress.js';
import { PgCustomCounter, PgPlainCounter } from './pgcount.js';
import { countTables, dropDatabase, listDatabases } from './pgscratch.js';
import { countingTap, dumpCommand, restoreCommand } from '../stream.js';
import { requireTool, toolInfo, toolVersion } from '../tools.js';

const optionsSchema = z.object({
  ...serverConnectionShape,
  format: z.enum(['custom', 'plain']).optional(),
  tables: z.array(z.string().min(1)).optional(),
  excludeTables: z.array(z.string().min(1)).optional(),
  emptyCheck: z.string().min(1).optional(),
});
export type PgDumpOptions = z.infer<typeof optionsSchema> & PgOptions;

const INSTALL_HINT =
  'Install the PostgreSQL client tools: Debian/Ubuntu: apt-get install postgresql-client; RHEL/Fedora: dnf install postgresql; macOS: brew install libpq.';

const ENTRY = { custom: 'db/dump.pgc', plain: 'db/dump.sql' } as const;

/** pg_dump's argv for these options (pure: tested without a server). */
export function pgDumpArgs(options: PgDumpOptions): string[] {
  const conn = pgConnection(options);
  const format = options.format ?? 'custom';
  const args = [`--dbname=${libpqString(conn)}`, '--no-password', '--strict-names'];
  if (format === 'custom') args.push('--format=custom', '--compress=0');
  else args.push('--format=plain', '--clean', '--if-exists', '--no-owner');
  for (const table of options.tables ?? []) args.push(`--table=${exactTablePattern(table)}`);
  for (const table of options.excludeTables ?? []) args.push(`--exclude-table=${exactTablePattern(table)}`);
  return args;
}

/** pg_restore's argv for a custom-format archive; `only` limits it to tables of one schema. */
export function pgRestoreArgs(options: PgDumpOptions, only: { schema: string; tables: string[] } | undefined): string[] {
  const conn = pgConnection(options);
  const args = [`--dbname=${libpqString(conn)}`, '--no-password', '--clean', '--if-exists', '--no-owner', '--single-transaction'];
  if (only) {
    args.push(`--schema=${only.schema}`);
    for (const table of only.tables) args.push(`--table=${table}`);
  }
  return args;
}

export function psqlRestoreArgs(options: PgDumpOptions): string[] {
  const conn = pgConnection(options);
  return [`--dbname=${libpqString(conn)}`, '--no-password', '--no-psqlrc', '--quiet', '--single-transaction', '-v', 'ON_ERROR_STOP=1'];
}

const USER_TABLES = `
  SELECT n.nspname AS schema, c.relname AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

function selectTables(all: { schema: string; name: string }[], options: PgDumpOptions): { schema: string; name: string }[] {
  const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
  const wanted = options.tables?.map((t) => splitTableName(t).join('.'));
  const excluded = new Set(options.excludeTables?.map((t) => splitTableName(t).join('.')));
  return all.filter((t) => (!wanted || wanted.includes(key(t))) && !excluded.has(key(t)));
}

export const pgDumpDriver: Driver<PgDumpOptions> = {
  name: 'pg_dump',
  optionsSchema,
  pathKeys: [],

  check(options) {
    const problems: string[] = [];
    if (!options.url && !options.database) problems.push('url: set "url", or "database" (with host, port, user, password as needed)');
    if (options.url) {
      try {
        const url = new URL(options.url);
        if (!/^postgres(ql)?:$/.test(url.protocol)) problems.push('url: expected a postgres:// or postgresql:// URL');
        else pgConnection(options);
      } catch (error) {
        problems.push(error instanceof URIError ? badEscapeProblem('url') : 'url: not a valid URL (expected postgres://user:password@host:port/database)');
      }
    }
    return problems;
  },

  describe: (options) => describeConnection(pgConnection(options)),

  withInto: (options, into) => ({ ...options, database: into }),

  matchesUnit: (name, unit) => unit.name === name || (!name.includes('.') && unit.name === `public.${name}`),

  // A restore connects before pg_restore starts (to create a database that is gone).
  async prepare(purpose) {
    if (purpose === 'restore') await loadPg();
  },

  scratch: () => ({ kind: 'database' }),
  countUnits: (_ctx, options, units) => countTables(options, units),
  listScratch: (_ctx, options, prefix) => listDatabases(options, prefix),
  dropScratch: (_ctx, options, name) => dropDatabase(options, name),

  async checkTools(ctx, options, purpose) {
    if (purpose === 'dump') requireTool(ctx, 'pg_dump', INSTALL_HINT);
    else requireTool(ctx, (options.format ?? 'custom') === 'custom' ? 'pg_restore' : 'psql', INSTALL_HINT);
  },

  async tools(ctx, options) {
    const restoreTool = (options.format ?? 'custom') === 'custom' ? 'pg_restore' : 'psql';
    const found = ['pg_dump', restoreTool].map((name) => requireTool(ctx, name, INSTALL_HINT));
    return Promise.all(found.map((tool) => toolInfo(ctx, tool)));
  },

  ping: (ctx, options) => pgPing(pgConnection(options), ctx.signal, ctx.target),

  async dump(ctx, options, sink) {
    const pgDump = requireTool(ctx, 'pg_dump', INSTALL_HINT);
    const conn = pgConnection(options);
    const format = options.format ?? 'custom';
    const version = await toolVersion(ctx, pgDump);
    const counter = format === 'custom' ? new PgCustomCounter() : new PgPlainCounter();
    let compressor: PgCustomCompressor | undefined;
    await dumpCommand(ctx, { command: pgDump, args: pgDumpArgs(options), env: libpqEnv(conn) }, sink, ENTRY[format], {
      compressed: false,
      encode: format === 'custom' ? (level) => (compressor = new PgCustomCompressor(level)) : undefined,
      tap: countingTap(counter),
    });
    if (compressor?.storedAsIs) ctx.log.warn(`the dump is stored uncompressed: ${compressor.storedAsIs}`);
    if (!counter.complete) ctx.log.warn(`could not count rows in the dump: ${counter.error?.message ?? 'it ended early'}`);
    const units: Unit[] = counter.counts().map((t) => ({ name: t.name, kind: 'table', count: counter.complete ? t.count : null }));
    return { units, tool: { name: 'pg_dump', version } };
  },

  async restore(ctx, options, archive, plan) {
    const conn = pgConnection(options);
    const format = archive.entries.some((e) => e.path === ENTRY.custom) ? 'custom' : 'plain';
    // A restore recreates a database that is gone (--into, or a wiped server found by auto).
    if (conn.database) {
      await ensureDatabase(options, conn.database).catch((error: unknown) => {
        if (plan.into) throw error;
        ctx.log.debug({ err: error }, 'could not check that the database exists; restoring into it as it is');
      });
    }
    if (format === 'plain') {
      if (plan.only) throw new UsageError('--only needs a custom-format archive; this one is plain SQL', { hint: 'Restore it whole, or set "format": "custom" for future backups.' });
      const psql = requireTool(ctx, 'psql', INSTALL_HINT);
      await restoreCommand(ctx, { command: psql, args: psqlRestoreArgs(options), env: libpqEnv(conn) }, await archive.open(ENTRY.plain));
      return;
    }
    const pgRestore = requireTool(ctx, 'pg_restore', INSTALL_HINT);
    const groups = plan.only ? groupBySchema(plan.only) : [undefined];
    for (const only of groups) {
      await restoreCommand(ctx, { command: pgRestore, args: pgRestoreArgs(options, only), env: libpqEnv(conn) }, await archive.open(ENTRY.custom));
    }
  },

  async isEmpty(ctx, options) {
    const conn = pgConnection(options);
    try {
      return await withClient(conn, conn.database, async (client) => {
        if (options.emptyCheck) {
          const [schema, table] = splitTableName(options.emptyCheck);
          const { rows } = await client.query<{ any: boolean }>(
            `SELECT EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.${quoteIdent(table)}) AS any`,
          );
          return !rows[0]!.any;
        }
        const tables = selectTables((await client.query<{ schema: string; name: string }>(USER_TABLES)).rows, options);
        ctx.log.debug({ tables: tables.length }, 'user tables');
        return tables.length === 0;
      });
    } catch (error) {
      if (error instanceof DatabaseMissingError) return true;
      throw error;
    }
  },
};

function groupBySchema(names: string[]): { schema: string; tables: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const [schema, table] = splitTableName(name);
    groups.set(schema, [...(groups.get(schema) ?? []), table]);
  }
  return [...groups].map(([schema, tables]) => ({ schema, tables }));
}

/** `restore --into`: create the database when it does not exist. */
async function ensureDatabase(options: PgDumpOptions, database: string): Promise<void> {
  const conn = pgConnection(options);
  await withClient(conn, 'postgres', async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
  });
}

