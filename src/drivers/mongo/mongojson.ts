/**
 * mongo-json driver: a native export through the official `mongodb` driver, readable, diffable and
 * type-preserving, with no tools to install. Manual: https://www.mongodb.com/docs/manual/reference/mongodb-extended-json/
 *
 * Config keys:
 *   uri                 mongodb://user:password@host:port/database (required)
 *   database            the database (default: the URI's; one of the two is required)
 *   collections         only these collections
 *   excludeCollections  all collections but these
 *   emptyCheck          a collection whose emptiness means "the database is empty" (for auto)
 *
 * Each collection goes to db/<collection>.jsonl, one canonical Extended JSON v2 document per line
 * in _id order, and its indexes to db/<collection>.indexes.json. Documents are read with BSON
 * values unpromoted, so a Double stays a Double and an Int32 an Int32 through the round trip. Each
 * line is encoded from the document's BSON bytes (ejson.ts, byte for byte the bson library's text),
 * into blocks of 256 KiB, and the cursor is read only as the archive takes the blocks (the next
 * batch is fetched while one is encoded), so memory stays flat. Restore drops each
 * collection, inserts its documents in ordered batches (the next decoded while one is inserted)
 * and recreates its indexes.
 */
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { Document, FindCursor } from 'mongodb';
import type { Driver } from '../../core/driver.js';
import { UsageError, VerificationError } from '../../core/errors.js';
import type { Unit } from '../../core/manifest.js';
import { lineBlocks } from '../blocks.js';
import { countCollections, dropDatabase, listDatabases, mongoIsEmpty, mongoPing, selectCollections, userCollections, withMongo } from './mongoclient.js';
import { type MongoOptions, checkMongoUri, describeMongo, mongoOptionsSchema, parseMongoUri } from './mongouri.js';

const optionsSchema = mongoOptionsSchema;
export type MongoJsonOptions = MongoOptions;

const BATCH = 1000;
/** BSON values unpromoted, strings checked as the driver checks them (invalid UTF-8 is an error, not U+FFFD). */
const DECODE = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true, validation: { utf8: true } } as const;

/** Collection names may hold characters a file name should not: `%` and `/` are escaped. */
export function entryName(collection: string, suffix: '.jsonl' | '.indexes.json'): string {
  return `db/${collection.replaceAll('%', '%25').replaceAll('/', '%2F')}${suffix}`;
}

function databaseOf(options: MongoJsonOptions): string {
  const database = options.database ?? parseMongoUri(options.uri)?.database;
  if (!database) throw new UsageError('mongo-json needs a database: set "database", or put it in the URI');
  return database;
}

export const mongoJsonDriver: Driver<MongoJsonOptions> = {
  name: 'mongo-json',
  optionsSchema,
  pathKeys: [],

  async prepare() {
    await import('mongodb');
  },

  check(options) {
    const problems = checkMongoUri(options.uri);
    if (problems.length === 0 && !options.database && !parseMongoUri(options.uri)?.database) {
      problems.push('database: required (or a database in the URI)');
    }
    return problems;
  },

  describe: (options) => describeMongo(options.uri, options.database ?? parseMongoUri(options.uri)?.database),

  withInto: (options, into) => ({ ...options, database: into }),

  /** No tool to install: the MongoDB Node.js driver is part of backupkit. */
  tools: async () => [{ name: 'mongodb (node driver)', version: await driverVersion() }],

  ping: (ctx, options) => mongoPing(options.uri, databaseOf(options), ctx.signal),

  scratch: () => ({ kind: 'database' }),
  countUnits: (_ctx, options, units) => countCollections(options.uri, databaseOf(options), units.map((u) => u.name)),
  listScratch: (_ctx, options, prefix) => listDatabases(options.uri, prefix),
  dropScratch: (_ctx, options, name) => dropDatabase(options.uri, name),

  async dump(ctx, options, sink) {
    const { BSON, version } = await import('mongodb').then(async (m) => ({ BSON: m.BSON, version: await driverVersion() }));
    const { EJSON } = BSON;
    const encoder = new (await import('./ejson.js')).EjsonEncoder(BSON.Decimal128);
    const database = databaseOf(options);
    const units: Unit[] = [];
    await withMongo(options.uri, async (client) => {
      const db = client.db(database);
      const names = selectCollections(await userCollections(db), options.collections, options.excludeCollections);
      for (const name of names) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const collection = db.collection(name);
        let count = 0;
        // Raw documents, encoded from their bytes (ejson.ts) a batch at a time: the driver would
        // decode every one, and a promise per document would cost more than encoding it.
        const cursor = collection.find({}, { sort: { _id: 1 }, batchSize: BATCH, raw: true });
        // One line at a time, as lineBlocks takes them: the encoder's buffer holds a single line.
        function* encoded(batch: Uint8Array[]) {
          for (const raw of batch) yield encoder.encode(raw) ?? EJSON.stringify(BSON.deserialize(raw, DECODE), { relaxed: false });
        }
        async function* lines() {
          for await (const batch of batches(cursor)) {
            count += batch.length;
            // With `raw`, the cursor hands on each document's bytes (its types do not say so).
            yield encoded(batch as unknown as Uint8Array[]);
          }
        }
        await sink.add(entryName(name, '.jsonl'), Readable.from(lineBlocks(lines()), { objectMode: false }), { compressed: false });
        const indexes = await collection.listIndexes().toArray();
        const spec = `${EJSON.stringify(indexes, { relaxed: false }, 2)}\n`;
        await sink.add(entryName(name, '.indexes.json'), Readable.from([Buffer.from(spec)]), { compressed: false });
        units.push({ name, kind: 'collection', count });
        ctx.log.debug({ collection: name, count }, 'collection exported');
      }
    });
    return { units, tool: { name: 'mongodb (node driver)', version } };
  },

  async restore(ctx, options, archive, plan) {
    const { BSON } = await import('mongodb');
    const database = databaseOf(options);
    const names = plan.only ?? plan.units.map((u) => u.name);
    await withMongo(options.uri, async (client) => {
      const db = client.db(database);
      for (const name of names) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const collection = db.collection(name);
        await collection.drop().catch((error: { codeName?: string }) => {
          if (error.codeName !== 'NamespaceNotFound') throw error;
        });
        await db.createCollection(name);
        let batch: Document[] = [];
        let line = 0;
        // One insert in flight while the next batch is decoded, so the server's work overlaps ours;
        // a batch is sent only once the one before it is in, so the documents keep their order.
        let inFlight: Promise<unknown> | undefined;
        const insert = async (documents: Document[]) => {
          await inFlight;
          inFlight = collection.insertMany(documents, { ordered: true });
          inFlight.catch(() => undefined); // awaited by the next insert, or below
        };
        try {
          const input = createInterface({ input: await archive.open(entryName(name, '.jsonl')), crlfDelay: Infinity });
          for await (const text of input) {
            line++;
            if (!text) continue;
            try {
              batch.push(BSON.EJSON.parse(text, { relaxed: false }) as Document);
            } catch (error) {
              throw new VerificationError(`${entryName(name, '.jsonl')} line ${line}: not Extended JSON`, { cause: error });
            }
            if (batch.length >= BATCH) {
              await insert(batch);
              batch = [];
            }
          }
          if (batch.length > 0) await insert(batch);
          await inFlight;
        } finally {
          await inFlight?.catch(() => undefined);
        }
        const indexes = await readIndexes(archive, name, BSON.EJSON);
        const specs = indexes.filter((index) => index.name !== '_id_');
        if (specs.length > 0) {
          await collection.createIndexes(
            specs.map(({ v: _v, ns: _ns, key, ...rest }) => ({ key, ...rest })) as Parameters<typeof collection.createIndexes>[0],
          );
        }
        ctx.log.debug({ collection: name, documents: line }, 'collection restored');
      }
    });
  },

  async isEmpty(_ctx, options) {
    return withMongo(options.uri, (client) => mongoIsEmpty(client, databaseOf(options), options.emptyCheck, options.collections, options.excludeCollections));
  },
};

/**
 * A cursor's batches, with the next batch already asked for while this one is processed: the
 * server's work and the round trip overlap ours. At most two batches are held. The cursor is closed
 * when the iteration ends, however it ends.
 */
async function* batches<T>(cursor: FindCursor<T>): AsyncGenerator<T[]> {
  let more: Promise<boolean> | undefined;
  try {
    more = cursor.hasNext();
    while (await more) {
      const batch = cursor.readBufferedDocuments();
      more = cursor.hasNext();
      more.catch(() => undefined); // it may fail while this batch is consumed: awaited, and thrown, below
      yield batch;
    }
  } finally {
    await more?.catch(() => undefined);
    await cursor.close();
  }
}

async function readIndexes(
  archive: { open(path: string): Promise<Readable> },
  name: string,
  ejson: { parse(text: string, options?: { relaxed?: boolean }): unknown },
): Promise<Document[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of await archive.open(entryName(name, '.indexes.json'))) chunks.push(chunk as Buffer);
  return ejson.parse(Buffer.concat(chunks).toString('utf8'), { relaxed: false }) as Document[];
}

async function driverVersion(): Promise<string> {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  return (require('mongodb/package.json') as { version: string }).version;
}
