import { BSON } from 'bson';
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { MongoArchiveCounter } from '../../src/drivers/mongo/mongoarchive.js';
import { countingTap } from '../../src/drivers/stream.js';
import { mongodumpArgs, mongorestoreArgs } from '../../src/drivers/mongo/mongodump.js';
import { describeMongo, parseMongoUri } from '../../src/drivers/mongo/mongouri.js';

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const TERM = int32(0xffffffff);
const doc = (value: object) => Buffer.from(BSON.serialize(value));

/** An archive laid out as mongo-tools' spec describes, with interleaved segments. */
function archive(): Buffer {
  const ns = (collection: string, EOF = false) => doc({ db: 'shop', collection, EOF, CRC: BSON.Long.fromNumber(0) });
  return Buffer.concat([
    int32(0x8199e26d),
    doc({ concurrent_collections: 4, version: '0.1', server_version: '6.0.0', tool_version: '100.7.0' }),
    doc({ db: 'shop', collection: 'a', metadata: '{}', size: 10 }),
    doc({ db: 'shop', collection: 'b', metadata: '{}', size: 10 }),
    doc({ db: 'shop', collection: 'empty', metadata: '{}', size: 0 }),
    TERM,
    ns('a'), doc({ i: 1 }), doc({ i: 2, pad: 'x'.repeat(3000) }), doc({ i: 3 }), TERM,
    ns('b'), doc({ j: 1 }), doc({ j: 2 }), TERM,
    ns('a'), doc({ i: 4 }), TERM,
    ns('a', true), TERM,
    ns('b', true), TERM,
    ns('empty', true), TERM,
  ]);
}

describe('mongodump archive counter', () => {
  for (const size of [1, 3, 7, 4096, 1 << 20]) {
    it(`counts documents per collection when fed ${size}-byte chunks`, () => {
      const data = archive();
      const counter = new MongoArchiveCounter();
      for (let i = 0; i < data.length; i += size) counter.write(data.subarray(i, i + size));
      expect(counter.counts()).toEqual([
        { db: 'shop', collection: 'a', count: 4 },
        { db: 'shop', collection: 'b', count: 2 },
        { db: 'shop', collection: 'empty', count: 0 },
      ]);
      expect(counter.complete).toBe(true);
      expect(counter.toolVersion).toBe('100.7.0');
    });
  }

  it('knows a truncated archive is incomplete, and rejects a foreign stream', () => {
    const data = archive();
    const counter = new MongoArchiveCounter();
    counter.write(data.subarray(0, data.length - 30));
    expect(counter.complete).toBe(false);
    const foreign = new MongoArchiveCounter();
    foreign.write(Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), data]));
    expect(foreign.error?.message).toMatch(/bad magic/);
    expect(foreign.complete).toBe(false);
  });
});

describe('mongodump archive counting tap', () => {
  /** Many documents, so that the archive spans many chunks. */
  function bigArchive(): Buffer {
    const ns = (collection: string, EOF = false) => doc({ db: 'shop', collection, EOF, CRC: BSON.Long.fromNumber(0) });
    const docs = Array.from({ length: 3000 }, (_, i) => doc({ i, pad: `${i}`.repeat(100 + (i % 50)) }));
    return Buffer.concat([
      int32(0x8199e26d),
      doc({ concurrent_collections: 4, version: '0.1', server_version: '6.0.0', tool_version: '100.7.0' }),
      doc({ db: 'shop', collection: 'big', metadata: '{}', size: 10 }),
      TERM,
      ns('big'), ...docs.slice(0, 1700), TERM,
      ns('big'), ...docs.slice(1700), TERM,
      ns('big', true), TERM,
    ]);
  }

  async function through(data: Buffer, size: number, counter: MongoArchiveCounter): Promise<Buffer> {
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += size) pieces.push(data.subarray(i, i + size));
    const out: Buffer[] = [];
    for await (const chunk of Readable.from(pieces).pipe(countingTap(counter))) out.push(chunk as Buffer);
    return Buffer.concat(out);
  }

  for (const size of [7, 4096, 256 * 1024]) {
    it(`passes the bytes on unchanged and counts them, in ${size}-byte chunks`, async () => {
      const data = bigArchive();
      const counter = new MongoArchiveCounter();
      expect((await through(data, size, counter)).equals(data)).toBe(true);
      expect({ error: counter.error, complete: counter.complete, counts: counter.counts() }).toEqual({
        error: undefined,
        complete: true,
        counts: [{ db: 'shop', collection: 'big', count: 3000 }],
      });
    });
  }

  it('still passes the bytes on when they cannot be counted, and says why', async () => {
    const foreign = Buffer.concat([Buffer.from('not an archive'), bigArchive()]);
    const counter = new MongoArchiveCounter();
    expect((await through(foreign, 65536, counter)).equals(foreign)).toBe(true);
    expect(counter.error?.message).toMatch(/bad magic/);
    expect(counter.complete).toBe(false);
  });

  it('knows a truncated stream is incomplete', async () => {
    const truncated = bigArchive().subarray(0, 20_000);
    const counter = new MongoArchiveCounter();
    expect((await through(truncated, 4096, counter)).equals(truncated)).toBe(true);
    expect(counter.complete).toBe(false);
  });
});

describe('mongo tools argv', () => {
  it('carries no URI: it is in the --config file', () => {
    expect(mongodumpArgs('/s/.x.yaml', 'shop', { exclude: ['logs'] })).toEqual(['--config=/s/.x.yaml', '--archive', '--db=shop', '--excludeCollection=logs']);
    expect(mongodumpArgs('/c', 'shop', { only: 'users', exclude: [] })).toContain('--collection=users');
    expect(mongorestoreArgs('/c', 'shop', { only: ['shop.zoo'], into: 'copy' })).toEqual([
      '--config=/c', '--archive', '--gzip', '--drop', '--nsInclude=shop.zoo', '--nsFrom=shop.*', '--nsTo=copy.*',
    ]);
    expect(mongorestoreArgs('/c', 'shop', { plain: true })).toEqual(['--config=/c', '--archive', '--drop']);
  });

  it('parses URIs with several hosts, and describes them without secrets', () => {
    expect(parseMongoUri('mongodb://u:p%40w@h1:27017,h2:27018/app?replicaSet=rs0')).toEqual({
      scheme: 'mongodb', user: 'u', password: 'p@w', hosts: 'h1:27017,h2:27018', database: 'app', query: 'replicaSet=rs0',
    });
    expect(describeMongo('mongodb://u:secret@h1:27017,h2/app', undefined)).toEqual({ database: 'app', host: 'h1', port: 27017 });
    expect(parseMongoUri('postgres://x')).toBeUndefined();
  });
});
