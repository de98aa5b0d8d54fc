/**
 * mysqldump driver, for MySQL and MariaDB. Manuals: https://dev.mysql.com/doc/refman/8.4/en/mysqldump.html,
 * https://mariadb.com/kb/en/mariadb-dump/ and https://dev.mysql.com/doc/refman/8.4/en/option-files.html
 *
 * Config keys:
 *   url            mysql://user:password@host:port/database (or mariadb://; ?socket=/path), or the keys below
 *   host, port, user, password, database
 *   socket         a unix socket path, instead of host and port
 *   tables         only these tables
 *   excludeTables  all tables but these
 *   emptyCheck     a table whose emptiness means "the database is empty" (for auto)
 *
 * Backup streams `mariadb-dump` (or `mysqldump`) --single-transaction into db/dump.sql, deflated by
 * the archive, and counts each table's rows from that text as it passes: the counts are those of
 * the dump's own snapshot. The dump names no database in its statements (no --databases), so it
 * restores into any database, which is how --into works. Restore feeds the entry to `mariadb` (or
 * `mysql`), filtered to the tables' sections for --only. The password reaches the tools only in a
 * 0600 option file given as their first argument, removed afterwards; it is then the only option
 * file they read, with the system-wide ones included, so that a password in ~/.my.cnf cannot win.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { badEscapeProblem, serverConnectionShape } from '../connection.js';
import type { Driver, DriverContext } from '../../core/driver.js';
import { OperationError, ToolFailedError, UsageError } from '../../core/errors.js';
import type { Source, Unit } from '../../core/manifest.js';
import { MysqlDumpCounter, filterTables } from './mysqlsql.js';
import { type Query, countTables, dropDatabase, listDatabases, quoteIdent, quoteString } from './mysqlscratch.js';
import { countingTap, dumpCommand, restoreCommand } from '../stream.js';
import { requireTool, toolInfo, toolVersion } from '../tools.js';

const optionsSchema = z.object({
  ...serverConnectionShape,
  socket: z.string().min(1).optional(),
  tables: z.array(z.string().min(1)).optional(),
  excludeTables: z.array(z.string().min(1)).optional(),
  emptyCheck: z.string().min(1).optional(),
});
export type MysqlDumpOptions = z.infer<typeof optionsSchema>;

const ENTRY = 'db/dump.sql';
const DUMP_TOOLS = ['mariadb-dump', 'mysqldump'];
const CLIENT_TOOLS = ['mariadb', 'mysql'];
const URL_PARAMS = ['socket'];

const INSTALL_HINT = [
  'Install the MySQL/MariaDB client tools:',
  '  Debian/Ubuntu: apt-get install mariadb-client (or default-mysql-client)',
  '  RHEL/Fedora:   dnf install mariadb',
  '  macOS:         brew install mysql-client',
].join('\n');

export interface MysqlConnection {
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
  password: string | undefined;
  database: string | undefined;
  socket: string | undefined;
}

/** The connection from `url`, with the explicit keys overriding its parts. */
export function mysqlConnection(options: MysqlDumpOptions): MysqlConnection {
  const conn: MysqlConnection = { host: undefined, port: undefined, user: undefined, password: undefined, database: undefined, socket: undefined };
  if (options.url) {
    const url = new URL(options.url);
    const host = decodeURIComponent(url.hostname);
    conn.host = (host.startsWith('[') ? host.slice(1, -1) : host) || undefined;
    conn.port = url.port ? Number(url.port) : undefined;
    conn.user = url.username ? decodeURIComponent(url.username) : undefined;
    conn.password = url.password ? decodeURIComponent(url.password) : undefined;
    conn.database = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined;
    conn.socket = url.searchParams.get('socket') ?? undefined;
  }
  if (options.host !== undefined) conn.host = options.host;
  if (options.port !== undefined) conn.port = options.port;
  if (options.user !== undefined) conn.user = options.user;
  if (options.password !== undefined) conn.password = options.password;
  if (options.database !== undefined) conn.database = options.database;
  if (options.socket !== undefined) conn.socket = options.socket;
  return conn;
}

function databaseOf(options: MysqlDumpOptions): string {
  const database = mysqlConnection(options).database;
  if (!database) throw new UsageError('the mysqldump driver needs a database ("database", or in the url)');
  return database;
}

/**
 * The option file: a [client] section with the password. Values are double-quoted with the escapes
 * the option-file reader undoes (\\ \" \' \n \r \t \b), so that no character (`#`, quotes, spaces at
 * either end) changes its meaning. `includes` come first (see `connectionArgs`).
 */
export function defaultsFileText(password: string | undefined, includes: string[] = []): string {
  const escapes: Record<string, string> = { '\\': '\\\\', '"': '\\"', "'": "\\'", '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b' };
  const line = password === undefined ? '' : `password="${password.replace(/[\\"'\n\r\t\b]/g, (c) => escapes[c]!)}"\n`;
  return `${includes.map((file) => `!include ${file}\n`).join('')}[client]\n${line}`;
}

/**
 * The system-wide option files the client reads on its own (MariaDB's and MySQL's Linux
 * locations), for an option file that is to be the only one read.
 */
export function globalOptionFiles(env: NodeJS.ProcessEnv, exists: (file: string) => boolean = existsSync): string[] {
  const home = env.MARIADB_HOME ?? env.MYSQL_HOME;
  return ['/etc/my.cnf', '/etc/mysql/my.cnf', ...(home ? [path.join(home, 'my.cnf')] : [])].filter((file) => exists(file));
}

/** Write the option file (mode 0600), run `fn` with its path, remove it whatever happens. */
export async function withDefaultsFile<T>(file: string, password: string | undefined, env: NodeJS.ProcessEnv, fn: (file: string) => Promise<T>): Promise<T> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const includes = password === undefined ? [] : globalOptionFiles(env);
  await writeFile(file, defaultsFileText(password, includes), { mode: 0o600, flag: 'wx' });
  try {
    return await fn(file);
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * The option file first (the tools only honour it there), then where and as whom to connect. With
 * a password, the file is the only one the tools read (--defaults-file), the system-wide files
 * included in it before the password: given as an extra file, it would be read before the user's
 * own ~/.my.cnf, whose password would win. Without one, it is an extra file, so that a password in
 * ~/.my.cnf is used.
 */
function connectionArgs(defaultsFile: string, conn: MysqlConnection): string[] {
  const args = [conn.password === undefined ? `--defaults-extra-file=${defaultsFile}` : `--defaults-file=${defaultsFile}`];
  if (conn.socket) args.push('--protocol=SOCKET', `--socket=${conn.socket}`);
  else {
    if (conn.host) args.push(`--host=${conn.host}`);
    // With a port, connect by TCP even to "localhost" (the client would take the default socket).
    if (conn.port !== undefined) args.push(`--port=${conn.port}`, '--protocol=TCP');
  }
  if (conn.user) args.push(`--user=${conn.user}`);
  return args;
}

/**
 * mariadb-dump's (or mysqldump's) argv (pure: tested without a server). No password: it is in
 * `defaultsFile`. Oracle's mysqldump would also write the server's GTID_PURGED, which a restore
 * into a server with its own GTID history refuses: it is left out.
 */
export function mysqldumpArgs(defaultsFile: string, options: MysqlDumpOptions, flavour: 'mariadb' | 'mysql' = 'mariadb'): string[] {
  const conn = mysqlConnection(options);
  const database = databaseOf(options);
  return [
    ...connectionArgs(defaultsFile, conn),
    '--default-character-set=utf8mb4',
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--skip-dump-date',
    '--max-allowed-packet=1G',
    ...(flavour === 'mysql' ? ['--set-gtid-purged=OFF'] : []),
    ...(options.excludeTables ?? []).map((table) => `--ignore-table=${database}.${table}`),
    '--',
    database,
    ...(options.tables ?? []),
  ];
}

/**
 * How long the client waits for a server to answer its connection, in seconds (as PostgreSQL's
 * PGCONNECT_TIMEOUT): without it, a server that accepts and never greets holds a run forever.
 * mariadb-dump and mysqldump have no such option.
 */
const CONNECT_TIMEOUT = '--connect-timeout=15';

/** The client's argv, before the statement options: where and as whom to connect, and for how long to try. */
function clientArgs(defaultsFile: string, options: MysqlDumpOptions): string[] {
  return [...connectionArgs(defaultsFile, mysqlConnection(options)), CONNECT_TIMEOUT, '--default-character-set=utf8mb4'];
}

/** The client's argv to run a dump read on stdin against the target's database. */
export function mysqlRestoreArgs(defaultsFile: string, options: MysqlDumpOptions): string[] {
  return [...clientArgs(defaultsFile, options), '--binary-mode', '--max-allowed-packet=1G', '--', databaseOf(options)];
}

/** The client's argv to run one statement, printing tab-separated rows without a header. */
export function mysqlQueryArgs(defaultsFile: string, options: MysqlDumpOptions, sql: string): string[] {
  return [...clientArgs(defaultsFile, options), '--batch', '--skip-column-names', '-e', sql];
}

export { quoteIdent, quoteString };

/** Run `fn` with a Query on the server, through the client and an option file named `fileName` (removed after). */
async function withQuery<T>(ctx: DriverContext, options: MysqlDumpOptions, fileName: string, fn: (query: Query) => Promise<T>): Promise<T> {
  const client = requireTool(ctx, CLIENT_TOOLS, INSTALL_HINT);
  return withDefaultsFile(ctx.tempPath(fileName), mysqlConnection(options).password, ctx.env, (file) =>
    fn(async (sql) => {
      const args = [...clientArgs(file, options), '--batch', '--skip-column-names'];
      const { stdout } = await ctx.runner.run({ command: client, args }, { signal: ctx.signal, stdin: sql });
      return stdout.split('\n').filter((line) => line !== '').map((line) => line.split('\t'));
    }),
  );
}

/** The base tables `isEmpty` looks at: those the target dumps. */
function tablesCondition(options: MysqlDumpOptions): string {
  const list = (names: string[]) => names.map(quoteString).join(', ');
  return [
    ...(options.tables ? [`table_name IN (${list(options.tables)})`] : []),
    ...(options.excludeTables?.length ? [`table_name NOT IN (${list(options.excludeTables)})`] : []),
  ]
    .map((condition) => ` AND ${condition}`)
    .join('');
}

export const mysqlDumpDriver: Driver<MysqlDumpOptions> = {
  name: 'mysqldump',
  optionsSchema,
  pathKeys: ['socket'],

  check(options) {
    const problems: string[] = [];
    let urlDatabase: string | undefined;
    if (options.url) {
      try {
        const url = new URL(options.url);
        if (!/^(mysql|mariadb):$/.test(url.protocol)) problems.push('url: expected a mysql:// or mariadb:// URL');
        for (const key of url.searchParams.keys()) {
          if (!URL_PARAMS.includes(key)) problems.push(`url: unsupported parameter "${key}" (supported: ${URL_PARAMS.join(', ')})`);
        }
        urlDatabase = url.pathname.length > 1 ? url.pathname.slice(1) : undefined;
        mysqlConnection(options);
      } catch (error) {
        problems.push(error instanceof URIError ? badEscapeProblem('url') : 'url: not a valid URL (expected mysql://user:password@host:port/database)');
      }
      if (problems.length === 0 && !urlDatabase && !options.database) problems.push('database: the url names no database; set "database"');
    } else if (!options.database) {
      problems.push('url: set "url", or "database" (with host, port, user, password or socket as needed)');
    }
    return problems;
  },

  describe(options): Source {
    const conn = mysqlConnection(options);
    return {
      ...(conn.database === undefined ? {} : { database: conn.database }),
      host: conn.socket ? 'localhost' : (conn.host ?? 'localhost'),
      ...(conn.socket ? { path: conn.socket } : { port: conn.port ?? 3306 }),
    };
  },

  withInto: (options, into) => ({ ...options, database: into }),

  matchesUnit: (name, unit) => unit.name === name,

  scratch: () => ({ kind: 'database' }),
  countUnits: (ctx, options, units) => withQuery(ctx, options, 'count.cnf', (query) => countTables(query, databaseOf(options), units)),
  listScratch: (ctx, options, prefix) => withQuery(ctx, options, 'scratch.cnf', (query) => listDatabases(query, prefix)),
  dropScratch: (ctx, options, name) => withQuery(ctx, options, 'scratch.cnf', (query) => dropDatabase(query, name)),

  async checkTools(ctx, _options, purpose) {
    requireTool(ctx, purpose === 'dump' ? DUMP_TOOLS : CLIENT_TOOLS, INSTALL_HINT);
  },

  async tools(ctx) {
    return Promise.all([DUMP_TOOLS, CLIENT_TOOLS].map((names) => toolInfo(ctx, requireTool(ctx, names, INSTALL_HINT))));
  },

  async ping(ctx, options) {
    const client = requireTool(ctx, CLIENT_TOOLS, INSTALL_HINT);
    const conn = mysqlConnection(options);
    const server = conn.socket ?? `${conn.host ?? 'localhost'}:${conn.port ?? 3306}`;
    const database = databaseOf(options);
    const where = `${server}/${database}`;
    return withDefaultsFile(ctx.tempPath('my.cnf'), conn.password, ctx.env, async (file) => {
      try {
        const sql = `SELECT VERSION(), (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${quoteString(database)})`;
        const { stdout } = await ctx.runner.run({ command: client, args: mysqlQueryArgs(file, options, sql) }, { signal: ctx.signal });
        const [version = '?', exists = '0'] = stdout.trim().split('\t');
        if (exists === '0') {
          throw new OperationError(`database ${database} does not exist at ${server}`, { hint: `Create it, or let a restore create it: backupkit restore ${ctx.target}` });
        }
        return `${/mariadb/i.test(version) ? 'MariaDB' : 'MySQL'} ${version.replace(/-MariaDB.*$/i, '')} at ${where}`;
      } catch (error) {
        if (!(error instanceof ToolFailedError)) throw error;
        const reason = error.stderrTail.split('\n').filter((line) => line.trim()).at(-1) ?? error.message;
        const denied = /\b(1045|1044|1698)\b|Access denied/i.test(reason);
        throw new OperationError(`cannot connect to the server at ${where}: ${reason}`, {
          cause: error,
          hint: denied
            ? 'Check the target\'s user and password ("url", or "user" and "password") and the account\'s grants.'
            : `Start the MariaDB/MySQL server at ${server}, or fix the target's "url" (host, port, socket).`,
        });
      }
    });
  },

  async dump(ctx, options, sink) {
    const tool = requireTool(ctx, DUMP_TOOLS, INSTALL_HINT);
    const version = await toolVersion(ctx, tool);
    const password = mysqlConnection(options).password;
    const counter = new MysqlDumpCounter();
    await withDefaultsFile(ctx.tempPath('my.cnf'), password, ctx.env, (file) =>
      dumpCommand(ctx, { command: tool, args: mysqldumpArgs(file, options, /mariadb/i.test(version) ? 'mariadb' : 'mysql') }, sink, ENTRY, {
        compressed: false,
        tap: countingTap(counter),
      }),
    );
    if (!counter.complete) ctx.log.warn('could not count rows in the dump: it did not end as a complete mysqldump text');
    const units: Unit[] = counter.counts().map((t) => ({ name: t.name, kind: 'table', count: counter.complete ? t.count : null }));
    return { units, tool: { name: path.basename(tool), version } };
  },

  async restore(ctx, options, archive, plan) {
    const client = requireTool(ctx, CLIENT_TOOLS, INSTALL_HINT);
    const password = mysqlConnection(options).password;
    await withDefaultsFile(ctx.tempPath('my.cnf'), password, ctx.env, async (file) => {
      // A restore recreates a database that is gone (--into, or a wiped server found by auto).
      const create = `CREATE DATABASE IF NOT EXISTS ${quoteIdent(databaseOf(options))}`;
      await ctx.runner.run({ command: client, args: mysqlQueryArgs(file, options, create) }, { signal: ctx.signal }).catch((error: unknown) => {
        if (plan.into) throw error;
        ctx.log.debug({ err: error }, 'could not make sure the database exists; restoring into it as it is');
      });
      const entry = await archive.open(ENTRY);
      const input = plan.only ? filterTables(entry, plan.only) : entry;
      await restoreCommand(ctx, { command: client, args: mysqlRestoreArgs(file, options) }, input);
    });
  },

  async isEmpty(ctx, options) {
    const client = requireTool(ctx, CLIENT_TOOLS, INSTALL_HINT);
    const database = databaseOf(options);
    const password = mysqlConnection(options).password;
    return withDefaultsFile(ctx.tempPath('my.cnf'), password, ctx.env, async (file) => {
      const query = async (sql: string) => {
        const { stdout } = await ctx.runner.run({ command: client, args: mysqlQueryArgs(file, options, sql) }, { signal: ctx.signal });
        return stdout.trim();
      };
      const db = quoteString(database);
      const [exists, tables] = (
        await query(
          `SELECT (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${db}),` +
            ` (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ${db} AND table_type = 'BASE TABLE'${tablesCondition(options)})`,
        )
      )
        .split('\t')
        .map(Number);
      ctx.log.debug({ database, exists, tables }, 'base tables');
      if (!exists || !tables) return true;
      if (!options.emptyCheck) return false;
      return (await query(`SELECT EXISTS (SELECT 1 FROM ${quoteIdent(database)}.${quoteIdent(options.emptyCheck)})`)) === '0';
    });
  },
};
