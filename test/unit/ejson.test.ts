/**
 * The mongo-json export's encoder against the bson library: for every document it encodes, its line
 * must be byte for byte what `EJSON.stringify(BSON.deserialize(bytes, DECODE), { relaxed: false })`
 * writes; for what it leaves to the library, it must say so rather than write anything.
 */
import { describe, expect, it } from 'vitest';
import {
  BSON,
  BSONRegExp,
  BSONSymbol,
  Binary,
  Code,
  DBRef,
  Decimal128,
  Double,
  Int32,
  Long,
  MaxKey,
  MinKey,
  ObjectId,
  Timestamp,
  UUID,
} from 'bson';
import { EjsonEncoder } from '../../src/drivers/mongo/ejson.js';

const DECODE = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true, validation: { utf8: true } } as const;
const library = (bytes: Uint8Array) => BSON.EJSON.stringify(BSON.deserialize(bytes, DECODE), { relaxed: false });

function expectSame(encoder: EjsonEncoder, doc: Record<string, unknown>): void {
  const bytes = BSON.serialize(doc);
  const line = encoder.encode(bytes);
  expect(line, `not encoded: ${library(bytes)}`).toBeDefined();
  expect(line!.toString('utf8')).toBe(library(bytes));
}

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

const DOUBLES = [0, -0, 1, -1.5, 0.1, 1 / 3, 1e21, 1e-7, 1.5e300, 5e-324, Number.MAX_VALUE, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 123456789.125, NaN, Infinity, -Infinity];
const INT64 = ['0', '-1', '1', '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993', '9223372036854775807', '-9223372036854775808', String(0x1fffff * 2 ** 32 + 5), String(0x200000 * 2 ** 32), String(-0x200000 * 2 ** 32), String(-0x200001 * 2 ** 32)];
const DECIMALS = [
  '0', '-0', '0.00', '-0.000', '0E+3', '0E-10', '1', '-1', '12.50', '-12.50', '0.000001', '0.0000001', '1234567', '1E+3', '1.23E-10', '1.5E+33', '1E+34',
  '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740991E-5', '123456789012345678901234567890.1234', '9.999999999999999999999999999999999E+6144',
  '1E-6176', '-1E-6176', '1E+6144', 'NaN', 'Infinity', '-Infinity', '1234567890.123456789012345678901234', '3.14159', '100', '1.000', '-7E-7', '7E-6',
];
const TEXTS = [
  '', 'plain', 'quote " and \\ backslash', 'tab\tnew\nline\rcr\bback\fform', '\u0000nul inside', '\u001f\u0001\u007f', 'Zoë 😀 山田', '\u2028\u2029 separators',
  `${'long text without escapes '.repeat(5)}`, `${'long "text" with\tescapes '.repeat(5)}`, '\u{10FFFF}',
];

describe('EjsonEncoder', () => {
  const encoder = new EjsonEncoder(Decimal128);

  it('writes what the library writes, for every type it encodes and their edge values', () => {
    expectSame(encoder, {
      _id: new ObjectId('65f000000000000000000001'),
      doubles: DOUBLES.map((d) => new Double(d)),
      ints: [0, -1, 2 ** 31 - 1, -(2 ** 31)].map((i) => new Int32(i)),
      longs: INT64.map((l) => Long.fromString(l)),
      decimals: DECIMALS.map((d) => Decimal128.fromString(d)),
      dates: [0, -1, 1, 8.64e15, -8.64e15, Date.UTC(2026, 10, 22, 13, 0, 0, 123), 253402300800000].map((ms) => new Date(ms)),
      binaries: [
        new Binary(Buffer.from([0, 1, 2, 253, 254, 255]), 0),
        new Binary(Buffer.alloc(0), 0),
        new Binary(Buffer.from('function'), 1),
        new Binary(Buffer.from('0123456789abcdef'), 3),
        new UUID('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'),
        new Binary(Buffer.from([1, 2, 3, 4, 5]), 4),
        new Binary(Buffer.from('0123456789abcdef'), 5),
        new Binary(Buffer.from('x'), 6),
        new Binary(Buffer.from('yz'), 7),
        new Binary(Buffer.from('sensitive'), 8),
        new Binary(Buffer.from('user defined'), 0x80),
        new Binary(Buffer.from('user defined'), 0xff),
      ],
      timestamps: [new Timestamp({ t: 0, i: 0 }), new Timestamp({ t: 1700000000, i: 7 }), new Timestamp({ t: 2 ** 32 - 1, i: 2 ** 32 - 1 })],
      keys: [new MinKey(), new MaxKey()],
      others: [null, true, false],
      texts: TEXTS,
      nested: { a: [[], [[]], {}, { b: { c: { d: [new Int32(1), 'two', null] } } }], empty: {} },
      'key "quoted" \\ and\ttab': 1,
      'ключ 😀': 'value',
      '': 'empty key',
      'x\u0001y': 'control character in a key',
    });
  });

  it('writes what the library writes for 2,000 generated documents', () => {
    const next = random(42);
    const pick = <T>(values: T[]): T => values[Math.floor(next() * values.length)]!;
    const value = (depth: number): unknown => {
      switch (Math.floor(next() * (depth > 2 ? 9 : 11))) {
        case 0: return new Double(pick(DOUBLES) * (next() < 0.5 ? 1 : next()));
        case 1: return new Int32(Math.floor(next() * 2 ** 32) - 2 ** 31);
        case 2: return Long.fromBits(Math.floor(next() * 2 ** 32), Math.floor(next() * 2 ** 32) >> Math.floor(next() * 32));
        case 3: return Decimal128.fromString(next() < 0.5 ? pick(DECIMALS) : `${Math.floor(next() * 1e9)}E${Math.floor(next() * 40) - 30}`);
        case 4: return pick(TEXTS) + String.fromCharCode(Math.floor(next() * 0x3000));
        case 5: return new Date(Math.floor((next() - 0.5) * 1e13));
        case 6: return new Binary(Buffer.from(Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256))), pick([0, 1, 3, 5, 0x80]));
        case 7: return pick([null, true, false, new MinKey(), new MaxKey(), new ObjectId(), new Timestamp({ t: Math.floor(next() * 2 ** 32), i: 1 })]);
        case 8: return pick(TEXTS);
        case 9: return Array.from({ length: Math.floor(next() * 5) }, () => value(depth + 1));
        default: return Object.fromEntries(Array.from({ length: Math.floor(next() * 5) }, (_, k) => [`${pick(['f', 'name', 'é', 'a"b'])}${k}`, value(depth + 1)]));
      }
    };
    for (let n = 0; n < 2000; n++) {
      const doc: Record<string, unknown> = { _id: new Int32(n) };
      for (let k = 0; k < 1 + Math.floor(next() * 8); k++) doc[`field${k}`] = value(0);
      expectSame(encoder, doc);
    }
  });

  it('grows for a large document and gives back the same text after it', () => {
    const big = `${'"quoted"\t'.repeat(30_000)}end`;
    expectSame(encoder, { _id: new Int32(1), big, list: Array.from({ length: 5000 }, (_, i) => new Int32(i)) });
    expectSame(encoder, { _id: new Int32(2), small: 'after' });
  });

  it.each([
    ['a key starting with $ (a DBRef)', { _id: 1, ref: new DBRef('users', new ObjectId()) }],
    ['a key starting with $', { _id: 1, sub: { $weird: 1 } }],
    ['an integer-like key, which a JavaScript object moves first', { _id: 1, scores: { b: 1, 2023: 2 } }],
    ['a __proto__ key', JSON.parse('{"_id": 1, "__proto__": {"x": 1}}') as Record<string, unknown>],
    ['a regular expression', { _id: 1, re: new BSONRegExp('^a', 'mi') }],
    ['JavaScript code', { _id: 1, code: new Code('function () {}') }],
    ['a symbol', { _id: 1, symbol: new BSONSymbol('s') }],
    ['old binary (subtype 2)', { _id: 1, old: new Binary(Buffer.from('abc'), 2) }],
  ])('leaves %s to the library', (_, doc) => {
    const bytes = BSON.serialize(doc);
    expect(encoder.encode(bytes)).toBeUndefined();
    expect(library(bytes)).toMatch(/^\{/);
  });

  it('leaves a date outside JavaScript range, bad UTF-8 and broken lengths to the library', () => {
    const date = Buffer.from(BSON.serialize({ d: new Date(0) }));
    date.writeBigInt64LE(9_000_000_000_000_000n, date.indexOf(0, 5) + 1);
    expect(encoder.encode(date)).toBeUndefined();

    const text = Buffer.from(BSON.serialize({ s: 'abcé' }));
    text[text.length - 3] = 0xff; // the second byte of é
    expect(encoder.encode(text)).toBeUndefined();
    expect(() => library(text)).toThrow(/UTF-8/i);

    const key = Buffer.from(BSON.serialize({ 'ké': 1 }));
    key[6] = 0xc0;
    expect(encoder.encode(key)).toBeUndefined();

    // A _bsontype field cannot be serialized by the library; it refuses to write one too.
    const bsontype = Buffer.from(BSON.serialize({ _id: 1, sub: { xbsontype: 'ObjectId' } }));
    bsontype[bsontype.indexOf('xbsontype')] = 0x5f;
    expect(encoder.encode(bsontype)).toBeUndefined();
    expect(() => library(bsontype)).toThrow();

    const good = Buffer.from(BSON.serialize({ a: 'text', b: new Int32(1) }));
    const short = Buffer.from(good);
    short.writeInt32LE(100, 7); // the string's length runs past the document
    expect(encoder.encode(short)).toBeUndefined();
    expect(encoder.encode(good.subarray(0, good.length - 1))).toBeUndefined();
    expect(encoder.encode(Buffer.concat([good, Buffer.from([0])]))).toBeUndefined();
    expect(encoder.encode(good)!.toString()).toBe(library(good));
  });
});
