/** A connected MongoClient for the duration of `fn` (the driver is loaded only when needed). */
import type { Db, MongoClient } from 'mongodb';
import { OperationError, errorMessage } from '../../core/errors.js';
import { describeMongo } from './mongouri.js';

export async function withMongo<T>(uri: string, fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 15_000, appName: 'backupkit' });
  try {
    await client.connect();
  } catch (error) {
    const { host, port } = describeMongo(uri, undefined);
    await client.close().catch(() => undefined);
    throw new OperationError(`cannot connect to MongoDB at ${host ?? '?'}${port ? `:${port}` : ''}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => undefined);
  }
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
