/** A connected MongoClient for the duration of `fn` (the driver is loaded only when needed). */
import type { Db, MongoClient } from 'mongodb';
import { OperationError, errorMessage } from '../../core/errors.js';
import { describeMongo } from './mongouri.js';

/**
 * Run `fn` with a connected client. An abort of `options.signal` closes the client, which fails
 * whatever is waiting on it; `serverSelectionTimeoutMS` bounds the wait for a server (15 s).
 */
export async function withMongo<T>(uri: string, fn: (client: MongoClient) => Promise<T>, options: { signal?: AbortSignal; serverSelectionTimeoutMS?: number } = {}): Promise<T> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 15_000, appName: 'backupkit' });
  const onAbort = () => void client.close().catch(() => undefined);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      if (options.signal?.aborted) throw options.signal.reason;
      await client.connect();
    } catch (error) {
      await client.close().catch(() => undefined);
      if (options.signal?.aborted) throw options.signal.reason;
      throw new OperationError(`cannot connect to MongoDB at ${where(uri)}: ${errorMessage(error)}`, {
        cause: error,
        hint: /auth/i.test(errorMessage(error))
          ? 'Check the user and password in the target\'s "uri" (and its authSource).'
          : `Start MongoDB at ${where(uri)}, or fix the target's "uri".`,
      });
    }
    try {
      return await fn(client);
    } finally {
      await client.close().catch(() => undefined);
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function where(uri: string): string {
  const { host, port } = describeMongo(uri, undefined);
  return `${host ?? '?'}${port ? `:${port}` : ''}`;
}

/**
 * A `ping` to the server and the server's version: proof that it answers and, with credentials in
 * the URI, that they are accepted. `database` is named in the answer, not checked for existence
 * (MongoDB creates a database on its first write).
 */
export async function mongoPing(uri: string, database: string | undefined, signal: AbortSignal): Promise<string> {
  return withMongo(
    uri,
    async (client) => {
      const admin = client.db('admin');
      await admin.command({ ping: 1 });
      const info = await admin.command({ buildInfo: 1 }).catch(() => undefined);
      const version = typeof info?.version === 'string' ? ` ${info.version}` : '';
      return `MongoDB${version} at ${where(uri)}${database ? `/${database}` : ''}`;
    },
    { signal, serverSelectionTimeoutMS: 5000 },
  );
}

/** User collections of a database (no views, no system.*), sorted by name. */
export async function userCollections(db: Db): Promise<string[]> {
  const infos = await db.listCollections({}, { nameOnly: false }).toArray();
  return infos
    .filter((c) => (c.type ?? 'collection') === 'collection' && !c.name.startsWith('system.'))
    .map((c) => c.name)
    .sort();
}

/** The collections a target covers: `collections` if given, minus `excludeCollections`. */
export function selectCollections(all: string[], include: string[] | undefined, exclude: string[] | undefined): string[] {
  const excluded = new Set(exclude ?? []);
  return (include ?? all).filter((c) => !excluded.has(c));
}

/** Empty: no user collections, or the `emptyCheck` collection holds no document. */
export async function mongoIsEmpty(client: MongoClient, database: string, emptyCheck: string | undefined, include?: string[], exclude?: string[]): Promise<boolean> {
  const db = client.db(database);
  if (emptyCheck) return (await db.collection(emptyCheck).findOne({}, { projection: { _id: 1 } })) === null;
  const collections = selectCollections(await userCollections(db), include, exclude);
  for (const name of collections) {
    if ((await db.collection(name).findOne({}, { projection: { _id: 1 } })) !== null) return false;
  }
  return true;
}

/**
 * `verify --deep`: the documents of each of `collections` in `database` (null for one that is not
 * there), counted by the server.
 */
export async function countCollections(uri: string, database: string, collections: string[]): Promise<(number | null)[]> {
  return withMongo(uri, async (client) => {
    const db = client.db(database);
    const present = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
    const counts: (number | null)[] = [];
    for (const name of collections) counts.push(present.has(name) ? await db.collection(name).countDocuments({}) : null);
    return counts;
  });
}

/** The databases whose names start with `prefix` (scratch databases of `verify --deep`). */
export async function listDatabases(uri: string, prefix: string): Promise<string[]> {
  return withMongo(uri, async (client) => {
    const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
    return databases.map((d) => d.name).filter((name) => name.startsWith(prefix)).sort();
  });
}

export async function dropDatabase(uri: string, name: string): Promise<void> {
  await withMongo(uri, (client) => client.db(name).dropDatabase());
}
