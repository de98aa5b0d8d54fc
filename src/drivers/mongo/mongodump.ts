/**
 * mongodump driver. Manuals: https://www.mongodb.com/docs/database-tools/mongodump/ and
 * https://www.mongodb.com/docs/database-tools/mongorestore/
 *
 * Config keys:
 *   uri                 mongodb://user:password@host:port/?authSource=admin (required)
 *   database            the database to dump (default: the URI's; without either, every database)
 *   collections         only these collections
 *   excludeCollections  all collections but these
 *   emptyCheck          a collection whose emptiness means "the database is empty"
 *
 * Backup streams `mongodump --archive` into db/dump.archive.gz, gzipped by backupkit on every core
 * (mongodump's --gzip would compress on one) and stored, and counts the documents of each
 * collection from the archive stream itself. Restore feeds the entry to
 * `mongorestore --archive --gzip --drop` (without --gzip for db/dump.archive, from archives made
 * while the entry was the plain archive). The URI (with its password) reaches the tools only in a
 * 0600 YAML file given to `--config`, removed afterwards.
 */
import type { Driver } from '../../core/driver.js';
import { UsageError } from '../../core/errors.js';
import type { Unit } from '../../core/manifest.js';
import { GzipStream } from '../../pipeline/gzip.js';
import { countCollections, dropDatabase, listDatabases, mongoIsEmpty, mongoPing, selectCollections, userCollections, withMongo } from './mongoclient.js';
import { MONGO_TOOLS_HINT, type MongoOptions, checkMongoUri, describeMongo, mongoOptionsSchema, parseMongoUri, withToolConfig } from './mongouri.js';
import { countingTap, dumpCommand, restoreCommand } from '../stream.js';
import { requireTool, toolInfo, toolVersion } from '../tools.js';

const optionsSchema = mongoOptionsSchema;
export type MongoDumpOptions = MongoOptions;

const ENTRY = 'db/dump.archive.gz';
/** Archives made by 0.1.0 builds between these layouts hold the archive uncompressed (deflated in the zip). */
const PLAIN_ENTRY = 'db/dump.archive';

function databaseOf(options: MongoDumpOptions): string | undefined {
  return options.database ?? parseMongoUri(options.uri)?.database;
}

/** mongodump's argv: no URI, no password; those are in the --config file. */
export function mongodumpArgs(configFile: string, database: string | undefined, collections: { only?: string; exclude: string[] }): string[] {
  const args = [`--config=${configFile}`, '--archive'];
  if (database) args.push(`--db=${database}`);
  if (collections.only) args.push(`--collection=${collections.only}`);
  for (const name of collections.exclude) args.push(`--excludeCollection=${name}`);
  return args;
}

export function mongorestoreArgs(configFile: string, from: string | undefined, plan: { only?: string[]; into?: string; plain?: boolean }): string[] {
  const args = [`--config=${configFile}`, '--archive', ...(plan.plain ? [] : ['--gzip']), '--drop'];
  for (const ns of plan.only ?? []) args.push(`--nsInclude=${ns}`);
  if (plan.into && from) args.push(`--nsFrom=${from}.*`, `--nsTo=${plan.into}.*`);
  return args;
}

export const mongodumpDriver: Driver<MongoDumpOptions> = {
  name: 'mongodump',
  optionsSchema,
  pathKeys: [],

  check: (options) => checkMongoUri(options.uri),

  describe: (options) => describeMongo(options.uri, databaseOf(options)),

  withInto: (options, into) => ({ ...options, database: into }),

  // mongorestore moves one database's namespaces into another (--nsFrom/--nsTo), not a server's.
  scratch: (_options, source) =>
    source.database ? { kind: 'database' } : { kind: 'unavailable', reason: 'it holds every database of the server, and a scratch database holds one' },
  countUnits: (_ctx, options, units) => countCollections(options.uri, databaseOf(options)!, units.map((u) => u.name)),
  listScratch: (_ctx, options, prefix) => listDatabases(options.uri, prefix),
  dropScratch: (_ctx, options, name) => dropDatabase(options.uri, name),

  async checkTools(ctx, _options, purpose) {
    requireTool(ctx, purpose === 'dump' ? 'mongodump' : 'mongorestore', MONGO_TOOLS_HINT);
  },

  async tools(ctx) {
    return Promise.all(['mongodump', 'mongorestore'].map((name) => toolInfo(ctx, requireTool(ctx, name, MONGO_TOOLS_HINT))));
  },

  ping: (ctx, options) => mongoPing(options.uri, databaseOf(options), ctx.signal),

  async dump(ctx, options, sink) {
    const mongodump = requireTool(ctx, 'mongodump', MONGO_TOOLS_HINT);
    const database = databaseOf(options);
    const version = await toolVersion(ctx, mongodump);
    const collections = await collectionFilter(options, database);
    const { MongoArchiveCounter } = await import('./mongoarchive.js');
    const counter = new MongoArchiveCounter();
    await withToolConfig(ctx.tempPath('mongodump.yaml'), options.uri, (configFile) =>
      dumpCommand(ctx, { command: mongodump, args: mongodumpArgs(configFile, database, collections) }, sink, ENTRY, { compressed: false, encode: (level) => new GzipStream(level), tap: countingTap(counter) }),
    );
    if (!counter.complete) ctx.log.warn(`could not count documents in the archive: ${counter.error?.message ?? 'it ended early'}`);
    // By name: mongodump dumps collections side by side, so their order in the archive varies.
    const units: Unit[] = counter
      .counts()
      .map((ns): Unit => ({ name: database ? ns.collection : `${ns.db}.${ns.collection}`, kind: 'collection', count: counter.error ? null : ns.count }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { units, tool: { name: 'mongodump', version } };
  },

  async restore(ctx, options, archive, plan) {
    const mongorestore = requireTool(ctx, 'mongorestore', MONGO_TOOLS_HINT);
    // Namespaces in the archive are those of the database that was dumped.
    const source = plan.source.database;
    if (plan.into && !source) throw new UsageError('--into needs an archive of a single database (set "database" for the target)');
    const only = plan.only?.map((name) => (source ? `${source}.${name}` : name));
    const plain = !archive.entries.some((e) => e.path === ENTRY) && archive.entries.some((e) => e.path === PLAIN_ENTRY);
    const args = (configFile: string) => mongorestoreArgs(configFile, source, { ...(only ? { only } : {}), ...(plan.into ? { into: plan.into } : {}), plain });
    await withToolConfig(ctx.tempPath('mongorestore.yaml'), options.uri, async (configFile) => {
      await restoreCommand(ctx, { command: mongorestore, args: args(configFile) }, await archive.open(plain ? PLAIN_ENTRY : ENTRY));
    });
  },

  async isEmpty(_ctx, options) {
    const database = databaseOf(options);
    return withMongo(options.uri, async (client) => {
      if (database) return mongoIsEmpty(client, database, options.emptyCheck, options.collections, options.excludeCollections);
      const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
      const user = databases.map((d) => d.name).filter((name) => !['admin', 'local', 'config'].includes(name));
      for (const name of user) if (!(await mongoIsEmpty(client, name, undefined))) return false;
      return true;
    });
  },
};

/** mongodump takes one --collection, or any number of --excludeCollection. */
async function collectionFilter(options: MongoDumpOptions, database: string | undefined): Promise<{ only?: string; exclude: string[] }> {
  const exclude = options.excludeCollections ?? [];
  if (!options.collections) return { exclude };
  if (!database) throw new UsageError('"collections" needs "database" (or a database in the URI)');
  if (options.collections.length === 1 && exclude.length === 0) return { only: options.collections[0]!, exclude: [] };
  const all = await withMongo(options.uri, (client) => userCollections(client.db(database)));
  const wanted = new Set(selectCollections(all, options.collections, exclude));
  return { exclude: all.filter((c) => !wanted.has(c)) };
}

