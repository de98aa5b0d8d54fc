/**
 * Catalog commands: databases, collections and indexes.
 */
import { Int32, Long, type Document } from 'bson';
import { collectionArg, cursorBatchSize, dbOf, docArg, OK, boolArg, type Handler } from './context.js';
import { badValue, CommandError, nsNotFound } from './errors.js';
import { matchesFilter } from './query.js';
import { encodeDoc, idIndexSpec, type Collection, type Store } from './store.js';
import { valuesEqual } from './values.js';

/** Generic command fields that are never collection/index options. */
const GENERIC_FIELDS = new Set([
  'lsid', 'txnNumber', 'autocommit', 'startTransaction', 'writeConcern', 'readConcern', 'comment',
  'maxTimeMS', 'apiVersion', 'apiStrict', 'apiDeprecationErrors',
]);

/** Command body minus the command name, `$`-fields and generic/session fields. */
function commandOptions(body: Document, command: string): Document {
  return Object.fromEntries(Object.entries(body).filter(([k]) => k !== command && !k.startsWith('$') && !GENERIC_FIELDS.has(k)));
}

function listDatabases(store: Store, body: Document): Document {
  const filter = docArg(body.filter, 'filter');
  const nameOnly = boolArg(body.nameOnly, false);
  const entries = store.databaseNames().map((name) => {
    const size = [...store.collections(name).values()].reduce((n, c) => n + c.dataSize, 0);
    return { name, sizeOnDisk: Long.fromNumber(Math.max(size, 4096)), empty: false };
  }).filter((e) => matchesFilter(e, filter));
  const totalSize = entries.reduce((n, e) => n + e.sizeOnDisk.toNumber(), 0);
  if (nameOnly) return { databases: entries.map(({ name }) => ({ name })), ok: OK };
  return { databases: entries, totalSize: Long.fromNumber(totalSize), totalSizeMb: Long.fromNumber(Math.floor(totalSize / 1048576)), ok: OK };
}

/** One listCollections entry, shaped like mongod 6.0's. */
function collectionInfo(name: string, coll: Collection): Document {
  return { name, type: 'collection', options: coll.options, info: { readOnly: false, uuid: coll.uuid }, idIndex: idIndexSpec() };
}

const listCollections: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const filter = docArg(cmd.body.filter, 'filter');
  const nameOnly = boolArg(cmd.body.nameOnly, false);
  const docs = [...ctx.store.collections(db).entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, coll]) => collectionInfo(name, coll))
    .filter((info) => matchesFilter(info, filter))
    .map((info) => encodeDoc(nameOnly ? { name: info.name, type: info.type } : info));
  return ctx.cursors.first(`${db}.$cmd.listCollections`, docs, cursorBatchSize(cmd.body));
};

const listIndexes: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'listIndexes');
  const coll = ctx.store.get(db, name);
  if (!coll) throw new CommandError(26, 'NamespaceNotFound', `ns does not exist: ${db}.${name}`);
  const docs = coll.indexSpecs().map(encodeDoc);
  return ctx.cursors.first(`${db}.$cmd.listIndexes.${name}`, docs, cursorBatchSize(cmd.body));
};

const create: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'create');
  if (ctx.store.get(db, name)) throw new CommandError(48, 'NamespaceExists', `Collection ${db}.${name} already exists.`);
  // idIndex is a separate listCollections field in mongod, not a stored option.
  const { idIndex: _idIndex, ...options } = commandOptions(cmd.body, 'create');
  ctx.store.ensure(db, name, options);
  return { ok: OK };
};

/** Normalizes an index spec to mongod's stored shape: `v`, `key`, `name`, then options. */
function normalizeIndexSpec(spec: unknown): Document {
  const s = docArg(spec, 'indexes');
  if (!s || typeof s.name !== 'string' || !docArg(s.key, 'key')) throw badValue('index specification must have a key and a name');
  const { v: _v, key, name, ns: _ns, ...rest } = s;
  return { v: new Int32(2), key, name, ...rest };
}

const createIndexes: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'createIndexes');
  if (!Array.isArray(cmd.body.indexes) || cmd.body.indexes.length === 0) throw badValue("Must specify at least one index to create");
  const specs = (cmd.body.indexes as unknown[]).map(normalizeIndexSpec);
  const { coll, created } = ctx.store.ensure(db, name);
  const before = coll.indexSpecs().length;
  for (const spec of specs) addIndex(coll, spec);
  const after = coll.indexSpecs().length;
  return {
    numIndexesBefore: new Int32(before),
    numIndexesAfter: new Int32(after),
    createdCollectionAutomatically: created,
    ...(before === after ? { note: 'all indexes already exist' } : {}),
    ok: OK,
  };
};

/** Adds an index spec unless an identical one exists; conflicting name/key → error 85/86. */
function addIndex(coll: Collection, spec: Document): void {
  const existing = coll.indexSpecs();
  const sameName = existing.find((i) => i.name === spec.name);
  if (sameName) {
    if (valuesEqual(sameName.key, spec.key)) return;
    throw new CommandError(86, 'IndexKeySpecsConflict', `An existing index has the same name as the requested index. Requested index: ${JSON.stringify(spec.name)}`);
  }
  const sameKey = existing.find((i) => valuesEqual(i.key, spec.key) && (spec.collation === undefined || valuesEqual(i.collation, spec.collation)));
  if (sameKey) throw new CommandError(85, 'IndexOptionsConflict', `Index already exists with a different name: ${String(sameKey.name)}`);
  coll.indexes.push(spec);
}

const dropIndexes: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'dropIndexes');
  const coll = ctx.store.get(db, name);
  if (!coll) throw nsNotFound(`${db}.${name}`);
  const was = coll.indexSpecs().length;
  const target: unknown = cmd.body.index;
  const pick = (pred: (spec: Document) => boolean, label: string): void => {
    const i = coll.indexes.findIndex(pred);
    if (i < 0) throw new CommandError(27, 'IndexNotFound', `index not found with name [${label}]`);
    coll.indexes.splice(i, 1);
  };
  if (target === '*') coll.indexes.length = 0;
  else if (typeof target === 'string') pick((s) => s.name === target, target);
  else if (Array.isArray(target)) for (const n of target) pick((s) => s.name === n, String(n));
  else if (target && typeof target === 'object') pick((s) => valuesEqual(s.key, target), JSON.stringify(target));
  else throw badValue('invalid index argument');
  return { nIndexesWas: new Int32(was), ok: OK };
};

const drop: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'drop');
  const coll = ctx.store.get(db, name);
  if (!coll) throw nsNotFound(`${db}.${name}`);
  const was = coll.indexSpecs().length;
  ctx.store.drop(db, name);
  return { nIndexesWas: new Int32(was), ns: `${db}.${name}`, ok: OK };
};

const dropDatabase: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  ctx.store.dropDatabase(db);
  return { dropped: db, ok: OK };
};

/** Storage statistics shared by `collStats` and the `$collStats` stage. */
export function storageStats(coll: Collection | undefined): Document {
  const count = coll?.count ?? 0;
  const size = coll?.dataSize ?? 0;
  const indexes = coll?.indexSpecs() ?? [];
  return {
    size: Long.fromNumber(size),
    count: Long.fromNumber(count),
    avgObjSize: new Int32(count ? Math.floor(size / count) : 0),
    storageSize: Long.fromNumber(size),
    freeStorageSize: Long.fromNumber(0),
    capped: false,
    nindexes: new Int32(indexes.length),
    totalIndexSize: Long.fromNumber(0),
    indexSizes: Object.fromEntries(indexes.map((i) => [String(i.name), Long.fromNumber(0)])),
  };
}

const collStats: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'collStats');
  const coll = ctx.store.get(db, name);
  if (!coll) throw nsNotFound(`${db}.${name}`);
  return { ns: `${db}.${name}`, ...storageStats(coll), ok: OK };
};

const dbStats: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const colls = [...ctx.store.collections(db).values()];
  const objects = colls.reduce((n, c) => n + c.count, 0);
  const dataSize = colls.reduce((n, c) => n + c.dataSize, 0);
  return {
    db,
    collections: new Int32(colls.length),
    views: new Int32(0),
    objects: Long.fromNumber(objects),
    avgObjSize: objects ? dataSize / objects : 0,
    dataSize: Long.fromNumber(dataSize),
    storageSize: Long.fromNumber(dataSize),
    indexes: new Int32(colls.reduce((n, c) => n + c.indexSpecs().length, 0)),
    indexSize: Long.fromNumber(0),
    ok: OK,
  };
};

/** Catalog command handlers by command name. */
export const catalogCommands: Record<string, Handler> = {
  listDatabases: (cmd, ctx) => listDatabases(ctx.store, cmd.body),
  listCollections,
  listIndexes,
  create,
  createIndexes,
  dropIndexes,
  deleteIndexes: (cmd, ctx) => dropIndexes({ ...cmd, body: { ...cmd.body, dropIndexes: cmd.body.deleteIndexes } }, ctx),
  drop,
  dropDatabase,
  collStats,
  dbStats,
};
