import { gzipSync } from 'node:zlib';
import { BSON } from 'bson';
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { MongoArchiveCounter, archiveCountingTap } from '../../src/drivers/mongoarchive.js';
import { mongodumpArgs, mongorestoreArgs } from '../../src/drivers/mongodump.js';
import { describeMongo, parseMongoUri } from '../../src/drivers/mongouri.js';

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
    expect(() => new MongoArchiveCounter().write(gzipSync(data))).toThrow(/bad magic/);
  });
});

describe('mongodump archive counting tap', () => {
  /** The bytes that came out; the counter's verdict is taken the moment the tap ends. */
  function through(data: Buffer, size: number, counter: MongoArchiveCounter): Promise<Buffer> {
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += size) pieces.push(data.subarray(i, i + size));
    const out: Buffer[] = [];
    const tap = Readable.from(pieces).pipe(archiveCountingTap(counter));
    return new Promise((resolve, reject) => {
      tap.on('data', (chunk: Buffer) => out.push(chunk));
      tap.once('error', reject);
      tap.once('end', () => {
        verdict.set(counter, { error: counter.error, complete: counter.complete, counts: counter.counts() });
        resolve(Buffer.concat(out));
      });
    });
  }
  const verdict = new WeakMap<MongoArchiveCounter, { error: Error | undefined; complete: boolean; counts: unknown }>();

  /** Many documents, so that the gzipped stream spans many chunks and the inflater's output several. */
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

  for (const size of [7, 4096, 256 * 1024]) {
    it(`passes the gzipped bytes on unchanged and counts them, in ${size}-byte chunks`, async () => {
      const gz = gzipSync(bigArchive());
      const counter = new MongoArchiveCounter();
      expect((await through(gz, size, counter)).equals(gz)).toBe(true);
      expect(verdict.get(counter)).toEqual({ error: undefined, complete: true, counts: [{ db: 'shop', collection: 'big', count: 3000 }] });
    });
  }

  it('still passes the bytes on when they cannot be counted', async () => {
    const notGzip = Buffer.from(bigArchive());
    const counter = new MongoArchiveCounter();
    expect((await through(notGzip, 65536, counter)).equals(notGzip)).toBe(true);
    expect(counter.error).toBeDefined();
  });

  it('ends only once the decompressor has seen the end: a truncated stream is an error by then', async () => {
    const truncated = gzipSync(bigArchive()).subarray(0, 20_000);
    const counter = new MongoArchiveCounter();
    expect((await through(truncated, 4096, counter)).equals(truncated)).toBe(true);
    expect(verdict.get(counter)).toMatchObject({ complete: false, error: expect.objectContaining({ message: expect.stringMatching(/unexpected end/) }) });
  });

  it('reports a bad gzip checksum by the time the tap ends', async () => {
    const gz = Buffer.from(gzipSync(bigArchive()));
    gz.writeUInt32LE(gz.readUInt32LE(gz.length - 8) ^ 1, gz.length - 8); // CRC-32 of the data
    const counter = new MongoArchiveCounter();
    expect((await through(gz, 256 * 1024, counter)).equals(gz)).toBe(true);
    expect(verdict.get(counter)?.error?.message).toMatch(/check/i);
  });
});

describe('mongo tools argv', () => {
  it('carries no URI: it is in the --config file', () => {
    expect(mongodumpArgs('/s/.x.yaml', 'shop', { exclude: ['logs'] })).toEqual(['--config=/s/.x.yaml', '--archive', '--gzip', '--db=shop', '--excludeCollection=logs']);
    expect(mongodumpArgs('/c', 'shop', { only: 'users', exclude: [] })).toContain('--collection=users');
    expect(mongorestoreArgs('/c', 'shop', { only: ['shop.zoo'], into: 'copy' })).toEqual([
      '--config=/c', '--archive', '--gzip', '--drop', '--nsInclude=shop.zoo', '--nsFrom=shop.*', '--nsTo=copy.*',
    ]);
  });

  it('parses URIs with several hosts, and describes them without secrets', () => {
    expect(parseMongoUri('mongodb://u:p%40w@h1:27017,h2:27018/app?replicaSet=rs0')).toEqual({
      scheme: 'mongodb', user: 'u', password: 'p@w', hosts: 'h1:27017,h2:27018', database: 'app', query: 'replicaSet=rs0',
    });
    expect(describeMongo('mongodb://u:secret@h1:27017,h2/app', undefined)).toEqual({ database: 'app', host: 'h1', port: 27017 });
    expect(parseMongoUri('postgres://x')).toBeUndefined();
  });
});
