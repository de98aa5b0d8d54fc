/** Seeding and fingerprinting MongoDB databases for the round trips. */
import { BSON, Binary, Decimal128, Double, Int32, Long, MaxKey, MinKey, MongoClient, ObjectId, Timestamp, BSONRegExp, UUID } from 'mongodb';
import { inject } from 'vitest';

export function mongoInfo() {
  return inject('mongo');
}

export async function withClient<T>(fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(mongoInfo().uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

let counter = 0;
export function databaseName(prefix: string): string {
  return `${prefix}_${process.pid}_${++counter}`;
}

/** Values of every BSON type the exports must carry exactly. */
export function typeZoo(): Record<string, unknown>[] {
  return [
    {
      _id: new ObjectId('65f000000000000000000001'),
      double: new Double(1.0),
      negZero: new Double(-0),
      int32: new Int32(42),
      long: Long.fromString('9007199254740993'),
      decimal: Decimal128.fromString('1234567890.123456789012345678901234'),
      date: new Date('2026-11-21T02:00:00.123Z'),
      uuid: new UUID('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'),
      binary: new Binary(Buffer.from([0, 1, 2, 253, 254, 255]), 0),
      regex: new BSONRegExp('^ab+c$', 'i'),
      timestamp: new Timestamp({ t: 1700000000, i: 7 }),
      min: new MinKey(),
      max: new MaxKey(),
      nullValue: null,
      bool: true,
      text: 'Zoë 😀 山田 "quotes" \\ back',
      nested: { a: [new Int32(1), new Double(2.5), 'three', { deep: [null, new Long(-1)] }], empty: {} },
      emptyArray: [],
    },
    { _id: 'string-id', value: new Int32(-7) },
    { _id: new Int32(3), value: new Double(3.0000001) },
  ];
}

export async function seedShop(database: string, items = 50_000): Promise<void> {
  await withClient(async (client) => {
    const db = client.db(database);
    const docs = Array.from({ length: items }, (_, i) => ({
      _id: new ObjectId(i.toString(16).padStart(24, '0')),
      sku: `SKU-${String(i).padStart(6, '0')}`,
      price: new Double(i * 0.25),
      qty: new Int32(i % 97),
      tags: i % 3 ? ['a', 'b'] : [],
      updated: new Date(Date.UTC(2026, 0, 1) + i * 60_000),
    }));
    for (let i = 0; i < docs.length; i += 5000) await db.collection('items').insertMany(docs.slice(i, i + 5000));
    await db.collection('items').createIndex({ sku: 1 }, { unique: true, name: 'sku_unique' });
    await db.collection('items').createIndex({ qty: -1, updated: 1 }, { name: 'qty_updated' });
    await db.collection('zoo').insertMany(typeZoo() as never[]);
  });
}

/** Canonical EJSON of every document, sorted by _id, and the indexes: equal fingerprints, equal data. */
export async function mongoFingerprint(database: string): Promise<Record<string, { docs: string[]; indexes: string[] }>> {
  return withClient(async (client) => {
    const db = client.db(database);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => !n.startsWith('system.')).sort();
    const out: Record<string, { docs: string[]; indexes: string[] }> = {};
    for (const name of names) {
      const docs = await db.collection(name).find({}, { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true }).toArray();
      const lines = docs.map((d) => ({ id: BSON.EJSON.stringify(d._id, { relaxed: false }), text: BSON.EJSON.stringify(d, { relaxed: false }) }));
      lines.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const indexes = (await db.collection(name).listIndexes().toArray())
        .map((i) => JSON.stringify({ name: i.name, key: i.key, unique: i.unique ?? false }))
        .sort();
      out[name] = { docs: lines.map((l) => l.text), indexes };
    }
    return out;
  });
}
