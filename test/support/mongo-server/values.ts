/**
 * BSON value helpers: canonical type ordering, comparison and equality as
 * mongod applies them in queries and sorts, for values decoded with
 * EXACT_DECODE (numbers stay Double/Int32/Long/Decimal128 wrappers).
 */
import { EJSON, type Document } from 'bson';

/** Anything a decoded BSON document may hold. */
export type BsonValue = unknown;

interface Tagged {
  _bsontype: string;
}

function bsonType(v: BsonValue): string | undefined {
  if (v !== null && typeof v === 'object' && '_bsontype' in v) return (v as Tagged)._bsontype;
  return undefined;
}

/** Rank of a value in MongoDB's cross-type sort order (lower sorts first). */
export function typeRank(v: BsonValue): number {
  if (v === null || v === undefined) return 2;
  if (typeof v === 'number' || typeof v === 'bigint') return 3;
  if (typeof v === 'string') return 4;
  if (typeof v === 'boolean') return 9;
  if (v instanceof Date) return 10;
  if (Array.isArray(v)) return 6;
  switch (bsonType(v)) {
    case 'MinKey': return 1;
    case 'Double': case 'Int32': case 'Long': case 'Decimal128': return 3;
    case 'BSONSymbol': return 4;
    case 'Binary': return 7;
    case 'ObjectId': return 8;
    case 'Timestamp': return 11;
    case 'BSONRegExp': return 12;
    case 'Code': return 13;
    case 'MaxKey': return 15;
    default: return 5; // plain object, DBRef
  }
}

/** True for Double/Int32/Long/Decimal128 wrappers and JS numbers/bigints. */
export function isNumeric(v: BsonValue): boolean {
  return typeRank(v) === 3;
}

/** Numeric value as an exact bigint when integral, else as a float. */
export function numericValue(v: BsonValue): number | bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  const t = bsonType(v);
  if (t === 'Long') return BigInt((v as { toString(): string }).toString());
  if (t === 'Int32') return BigInt((v as { value: number }).value);
  if (t === 'Double') return (v as { value: number }).value;
  return Number.parseFloat((v as { toString(): string }).toString());
}

/** Numeric value as a JS number (lossy for huge Longs). */
export function toNumber(v: BsonValue): number {
  return Number(numericValue(v));
}

function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : -1) : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareObjects(a: Document, b: Document): number {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
    const na = ka[i] as string;
    const nb = kb[i] as string;
    const byType = typeRank(a[na]) - typeRank(b[nb]);
    if (byType !== 0) return sign(byType);
    const byName = compareStrings(na, nb);
    if (byName !== 0) return byName;
    const byValue = compareValues(a[na], b[nb]);
    if (byValue !== 0) return byValue;
  }
  return sign(ka.length - kb.length);
}

function compareArrays(a: readonly BsonValue[], b: readonly BsonValue[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareValues(a[i], b[i]);
    if (c !== 0) return c;
  }
  return sign(a.length - b.length);
}

interface BinaryLike { sub_type: number; buffer: Uint8Array; position: number }

function compareBinary(a: BinaryLike, b: BinaryLike): number {
  if (a.position !== b.position) return sign(a.position - b.position);
  if (a.sub_type !== b.sub_type) return sign(a.sub_type - b.sub_type);
  return Buffer.compare(a.buffer.subarray(0, a.position), b.buffer.subarray(0, b.position));
}

/** Total order over BSON values (MongoDB comparison/sort order). */
export function compareValues(a: BsonValue, b: BsonValue): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return sign(ra - rb);
  switch (ra) {
    case 1: case 2: case 15: return 0;
    case 3: return compareNumbers(numericValue(a), numericValue(b));
    case 4: return compareStrings(String(a), String(b));
    case 5: return compareObjects(a as Document, b as Document);
    case 6: return compareArrays(a as BsonValue[], b as BsonValue[]);
    case 7: return compareBinary(a as BinaryLike, b as BinaryLike);
    case 8: return compareStrings((a as { toHexString(): string }).toHexString(), (b as { toHexString(): string }).toHexString());
    case 9: return sign(Number(a) - Number(b));
    case 10: return sign((a as Date).getTime() - (b as Date).getTime());
    case 11: {
      const ta = a as { t: number; i: number };
      const tb = b as { t: number; i: number };
      return ta.t !== tb.t ? sign(ta.t - tb.t) : sign(ta.i - tb.i);
    }
    case 12: {
      const xa = a as { pattern: string; options: string };
      const xb = b as { pattern: string; options: string };
      return compareStrings(xa.pattern, xb.pattern) || compareStrings(xa.options, xb.options);
    }
    default: return compareStrings(String(a), String(b));
  }
}

/** Query equality: same canonical type and equal value (1 == 1.0 == Long(1)). */
export function valuesEqual(a: BsonValue, b: BsonValue): boolean {
  return typeRank(a) === typeRank(b) && compareValues(a, b) === 0;
}

/**
 * A string key identifying a value for uniqueness checks (`_id`, unique
 * indexes): numerically equal numbers share a key.
 */
export function valueKey(v: BsonValue): string {
  if (isNumeric(v)) {
    const n = numericValue(v);
    if (typeof n === 'bigint') return `n:${n}`;
    return Number.isInteger(n) ? `n:${BigInt(n)}` : `n:${n}`;
  }
  if (typeof v === 'string') return `s:${v}`;
  if (bsonType(v) === 'ObjectId') return `o:${(v as { toHexString(): string }).toHexString()}`;
  return `x:${typeRank(v)}:${EJSON.stringify({ v }, { relaxed: false })}`;
}

/** True for a plain embedded document (not an array, Date or BSON wrapper). */
export function isPlainObject(v: BsonValue): v is Document {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && bsonType(v) === undefined;
}
