/**
 * PostgreSQL connection settings for the pg_dump driver: from `url` or host/port/user/password/
 * database. The tools get a libpq keyword string without the password (PGPASSWORD carries it, in
 * their environment); catalog queries go through the `pg` client.
 */
import type pg from 'pg';
import { OperationError, errorMessage } from '../../core/errors.js';

export interface PgOptions {
  url?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  password?: string | undefined;
  database?: string | undefined;
}

export interface PgConnection {
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
  password: string | undefined;
  database: string | undefined;
  /** Other URL parameters (sslmode, ...), passed to libpq as keywords. */
  params: Record<string, string>;
}

export function pgConnection(options: PgOptions): PgConnection {
  const conn: PgConnection = {
    host: undefined,
    port: undefined,
    user: undefined,
    password: undefined,
    database: undefined,
    params: {},
  };
  if (options.url) {
    const url = new URL(options.url);
    conn.host = decodeURIComponent(url.hostname) || undefined;
    conn.port = url.port ? Number(url.port) : undefined;
    conn.user = url.username ? decodeURIComponent(url.username) : undefined;
    conn.password = url.password ? decodeURIComponent(url.password) : undefined;
    conn.database = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined;
    for (const [key, value] of url.searchParams) {
      if (key === 'host') conn.host = value;
      else if (key === 'port') conn.port = Number(value);
      else if (key === 'user') conn.user = value;
      else if (key === 'password') conn.password = value;
      else if (key === 'dbname') conn.database = value;
      else conn.params[key] = value;
    }
  }
  if (options.host !== undefined) conn.host = options.host;
  if (options.port !== undefined) conn.port = options.port;
  if (options.user !== undefined) conn.user = options.user;
  if (options.password !== undefined) conn.password = options.password;
  if (options.database !== undefined) conn.database = options.database;
  return conn;
}

/** A libpq keyword/value string, e.g. `host='db' port='5432' dbname='crm'`. Never holds the password. */
export function libpqString(conn: PgConnection, database = conn.database): string {
  const pairs: [string, string | number | undefined][] = [
    ['host', conn.host],
    ['port', conn.port],
    ['user', conn.user],
    ['dbname', database],
    ...Object.entries(conn.params),
  ];
  return pairs
    .filter((pair): pair is [string, string | number] => pair[1] !== undefined && pair[1] !== '')
    .map(([key, value]) => `${key}='${String(value).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`)
    .join(' ');
}

/** The environment for libpq tools: the password, and a bounded connect timeout. */
export function libpqEnv(conn: PgConnection): Record<string, string | undefined> {
  return {
    PGPASSWORD: conn.password,
    PGCONNECT_TIMEOUT: '15',
  };
}

export function describeConnection(conn: PgConnection): { database?: string; host?: string; port?: number } {
  return {
    ...(conn.database === undefined ? {} : { database: conn.database }),
    host: conn.host ?? 'localhost',
    port: conn.port ?? 5432,
  };
}

/**
 * Run `fn` with a connected `pg` client; connection failures become OperationErrors. An abort of
 * `signal` ends the connection, which fails whatever is waiting on it.
 */
/** node-postgres, loaded when a PostgreSQL target first needs a connection (about 0.15 s on Node 20). */
export const loadPg = () => import('pg');

export async function withClient<T>(
  conn: PgConnection,
  database: string | undefined,
  fn: (client: pg.Client) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const sslmode = conn.params.sslmode;
  const { default: postgres } = await loadPg();
  const client = new postgres.Client({
    ...(conn.host === undefined ? {} : { host: conn.host }),
    ...(conn.port === undefined ? {} : { port: conn.port }),
    ...(conn.user === undefined ? {} : { user: conn.user }),
    ...(conn.password === undefined ? {} : { password: conn.password }),
    ...(database === undefined ? {} : { database }),
    ...(sslmode && sslmode !== 'disable' && sslmode !== 'prefer' && sslmode !== 'allow'
      ? { ssl: { rejectUnauthorized: sslmode === 'verify-ca' || sslmode === 'verify-full' } }
      : {}),
    connectionTimeoutMillis: 15_000,
    application_name: 'backupkit',
  });
  const onAbort = () => void client.end().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      if (signal?.aborted) throw signal.reason;
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      const where = `${conn.host ?? 'localhost'}:${conn.port ?? 5432}${database ? `/${database}` : ''}`;
      if ((error as { code?: string }).code === '3D000') throw new DatabaseMissingError(`database ${database} does not exist`, { cause: error });
      throw new OperationError(`cannot connect to PostgreSQL at ${where}: ${errorMessage(error)}`, { cause: error });
    }
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export class DatabaseMissingError extends OperationError {}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `users` -> ["public", "users"]; `sales.orders` -> ["sales", "orders"]. */
export function splitTableName(name: string): [string, string] {
  const dot = name.indexOf('.');
  return dot === -1 ? ['public', name] : [name.slice(0, dot), name.slice(dot + 1)];
}

/** A pg_dump/pg_restore pattern that matches exactly this table (quotes make it literal). */
export function exactTablePattern(name: string): string {
  const [schema, table] = splitTableName(name);
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/**
 * The server's version, read over a connection to the target's database: proof that the server
 * answers and lets this user in. A failure says what to do (start it, fix the url, the password).
 */
export async function pgPing(conn: PgConnection, signal: AbortSignal, target: string): Promise<string> {
  const { host, port, database } = describeConnection(conn);
  const where = `${host}:${port}${database ? `/${database}` : ''}`;
  try {
    const version = await withClient(conn, conn.database, async (client) => (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version, signal);
    return `PostgreSQL ${version.split(' ')[0]} at ${where}`;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof DatabaseMissingError) {
      throw new OperationError(`database ${database} does not exist on ${host}:${port}`, {
        cause: error,
        hint: `Create it (createdb ${database}), or let a restore create it: backupkit restore ${target}`,
      });
    }
    const code = codeOf(error);
    const hint =
      code === '28P01' || code === '28000'
        ? `Check the target's user and password ("url", or "user" and "password") and the server's pg_hba.conf.`
        : code && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|ECONNRESET)$/.test(code)
          ? `Start PostgreSQL at ${host}:${port} (pg_isready -h ${host} -p ${port} tells whether it accepts connections), or fix the target's "url" (host, port).`
          : undefined;
    throw new OperationError(errorMessage(error), { cause: error, ...(hint ? { hint } : {}) });
  }
}

/** A pg or network error code (SQLSTATE, errno) in the error or its causes. */
function codeOf(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
