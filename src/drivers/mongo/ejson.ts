/**
 * Canonical Extended JSON v2 straight from a document's BSON bytes, for the mongo-json export.
 * Spec: https://www.mongodb.com/docs/manual/reference/mongodb-extended-json/
 *
 * The bson library writes EJSON from decoded documents: every value becomes an object, then a
 * wrapper object (`{"$numberInt": ...}`), then JSON text. On the benchmark's 200,000 documents
 * that cost about 20 µs a document (the encoder: 7 µs), and its garbage took the export past
 * 200 MB. This encoder walks the bytes once and writes the line into one reused buffer.
 *
 * It writes exactly what `EJSON.stringify(BSON.deserialize(bytes, DECODE), { relaxed: false })`
 * writes, byte for byte (test/unit/ejson.test.ts compares the two over every type it writes). Where the
 * library's text would depend on more than the bytes, the encoder does not guess: `encode` returns
 * undefined and the caller asks the library. That is the case for
 * - a key that starts with `$` (the library turns `{$ref, $id}` into a DBRef) or with a digit (a
 *   JavaScript object lists integer-like keys first), the keys `__proto__` and `_bsontype` (which
 *   the library refuses to write), and a key that is not valid UTF-8 (the library decodes it with
 *   U+FFFD);
 * - a string value that is not valid UTF-8: the library refuses it, and so the export fails as it
 *   always did;
 * - regular expressions (the library sorts their flags), the deprecated types (undefined,
 *   DBPointer, JavaScript code, symbol), binary subtypes 2 (old binary) and 9 (vector, which the
 *   library validates), and dates outside JavaScript's range;
 * - a document whose lengths do not add up (the library says what is wrong with it).
 * Decimal128 values with a coefficient wider than 2^53 are formatted by the library's Decimal128.
 */
import { isUtf8 } from 'node:buffer';

/** The library's Decimal128 (bson's), passed in so that this module loads nothing. */
export type DecimalClass = new (bytes: Uint8Array) => { toString(): string };

const UNSUPPORTED = new Error('not encoded here');
const NOTHING = Buffer.alloc(0);
const START_BYTES = 64 * 1024;
/** A buffer grown for one very large document is let go after it. */
const KEEP_BYTES = 1 << 20;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Keys the library treats specially when it decodes or writes a document. */
const SPECIAL_KEYS = [Buffer.from('__proto__', 'latin1'), Buffer.from('_bsontype', 'latin1')];
/** JSON's short escapes; other control characters are written \u00XX, as JSON.stringify does. */
const SHORT: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72, 0x22: 0x22, 0x5c: 0x5c };
/** Extra bytes a byte takes in a JSON string: 1 for a short escape, 5 for \u00XX, else 0. */
const EXTRA = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) EXTRA[c] = SHORT[c] ? 1 : 5;
EXTRA[0x22] = 1;
EXTRA[0x5c] = 1;

export class EjsonEncoder {
  private out = Buffer.allocUnsafe(START_BYTES);
  private at = 0;
  private src: Buffer = NOTHING;

  constructor(private readonly Decimal128: DecimalClass) {}

  /**
   * The document's line (without a newline), in a buffer that stays valid until the next call; or
   * undefined when only the library can write it.
   */
  encode(document: Uint8Array): Buffer | undefined {
    if (this.out.length > KEEP_BYTES) this.out = Buffer.allocUnsafe(START_BYTES);
    this.src = Buffer.isBuffer(document) ? document : Buffer.from(document.buffer, document.byteOffset, document.byteLength);
    this.at = 0;
    try {
      if (this.document(0, false, this.src.length) !== this.src.length) return undefined;
      return this.out.subarray(0, this.at);
    } catch (error) {
      if (error === UNSUPPORTED || error instanceof RangeError) return undefined;
      throw error;
    } finally {
      this.src = NOTHING; // the batch the document came from is not held
    }
  }

  /** The document or array at `start`, which must end by `limit`; returns where it ends. */
  private document(start: number, array: boolean, limit: number): number {
    const src = this.src;
    const size = src.readInt32LE(start);
    const end = start + size;
    if (size < 5 || end > limit || src[end - 1] !== 0) throw UNSUPPORTED;
    this.byte(array ? 0x5b : 0x7b);
    let i = start + 4;
    let first = true;
    for (;;) {
      const type = src[i++]!;
      if (type === 0) {
        if (i !== end) throw UNSUPPORTED;
        break;
      }
      const keyEnd = src.indexOf(0, i);
      if (keyEnd < 0 || keyEnd >= end - 1) throw UNSUPPORTED;
      if (!first) this.byte(0x2c);
      first = false;
      if (!array) {
        this.key(i, keyEnd);
        this.byte(0x3a);
      }
      i = this.value(type, keyEnd + 1, end - 1);
    }
    this.byte(array ? 0x5d : 0x7d);
    return end;
  }

  private key(start: number, end: number): void {
    const c = this.src[start]!;
    if (c === 0x24 || (c >= 0x30 && c <= 0x39)) throw UNSUPPORTED;
    if (c === 0x5f) for (const key of SPECIAL_KEYS) if (this.src.compare(key, 0, key.length, start, end) === 0) throw UNSUPPORTED;
    this.quoted(start, end);
  }

  /** The value of BSON type `type` at `i`, which must end by `limit`; returns where it ends. */
  private value(type: number, i: number, limit: number): number {
    const src = this.src;
    let next: number;
    switch (type) {
      case 0x01: {
        const v = src.readDoubleLE(i);
        this.typed('{"$numberDouble":"', Object.is(v, -0) ? '-0.0' : Number.isInteger(v) ? v.toFixed(1) : String(v));
        next = i + 8;
        break;
      }
      case 0x02: {
        const size = src.readInt32LE(i);
        const start = i + 4;
        next = start + size;
        if (size < 1 || next > limit || src[next - 1] !== 0) throw UNSUPPORTED;
        this.quoted(start, next - 1);
        break;
      }
      case 0x03:
        return this.document(i, false, limit);
      case 0x04:
        return this.document(i, true, limit);
      case 0x05: {
        const size = src.readInt32LE(i);
        const subtype = src[i + 4]!;
        const start = i + 5;
        next = start + size;
        if (size < 0 || subtype === 0x02 || subtype === 0x09 || next > limit) throw UNSUPPORTED;
        this.ascii('{"$binary":{"base64":"');
        this.ascii(src.toString('base64', start, next));
        this.ascii('","subType":"');
        this.hex(subtype);
        this.ascii('"}}');
        break;
      }
      case 0x07:
        next = i + 12;
        if (next > limit) throw UNSUPPORTED;
        this.ascii('{"$oid":"');
        for (let k = i; k < next; k++) this.hex(src[k]!);
        this.ascii('"}');
        break;
      case 0x08: {
        const v = src[i]!;
        if (v > 1) throw UNSUPPORTED;
        this.ascii(v === 1 ? 'true' : 'false');
        next = i + 1;
        break;
      }
      case 0x09: {
        // The library makes a Date of it, which holds at most 8.64e15 ms either side of 1970.
        const ms = src.readInt32LE(i + 4) * 4294967296 + src.readUInt32LE(i);
        if (Math.abs(ms) > 8.64e15) throw UNSUPPORTED;
        this.typed('{"$date":{"$numberLong":"', String(ms), '"}}');
        next = i + 8;
        break;
      }
      case 0x0a:
        this.ascii('null');
        next = i;
        break;
      case 0x10:
        this.typed('{"$numberInt":"', String(src.readInt32LE(i)));
        next = i + 4;
        break;
      case 0x11:
        this.ascii(`{"$timestamp":{"t":${src.readUInt32LE(i + 4)},"i":${src.readUInt32LE(i)}}}`);
        next = i + 8;
        break;
      case 0x12: {
        const high = src.readInt32LE(i + 4);
        // Exact as a double while |high| < 2^21; BigInt beyond.
        const text = high >= -0x200000 && high < 0x200000 ? String(high * 4294967296 + src.readUInt32LE(i)) : src.readBigInt64LE(i).toString();
        this.typed('{"$numberLong":"', text);
        next = i + 8;
        break;
      }
      case 0x13:
        next = i + 16;
        if (next > limit) throw UNSUPPORTED;
        this.typed('{"$numberDecimal":"', this.decimal(i) ?? new this.Decimal128(src.subarray(i, next)).toString());
        break;
      case 0xff:
        this.ascii('{"$minKey":1}');
        next = i;
        break;
      case 0x7f:
        this.ascii('{"$maxKey":1}');
        next = i;
        break;
      default:
        throw UNSUPPORTED;
    }
    if (next > limit) throw UNSUPPORTED;
    return next;
  }

  /**
   * A Decimal128 whose coefficient is below 2^53, as the library's toString writes it (IEEE 754's
   * to-scientific-string); undefined for the rest (wider coefficients, infinities, NaN), which the
   * library formats. Its toString allocates about 2 KiB a value, in 64-bit arithmetic on objects.
   */
  private decimal(i: number): string | undefined {
    const src = this.src;
    const high = src.readUInt32LE(i + 12);
    // The combination field's top two bits set: infinity, NaN or a coefficient of 113 bits or more.
    if (((high >>> 29) & 3) === 3 || (high & 0x1ffff) !== 0 || src.readUInt32LE(i + 8) !== 0) return undefined;
    const middle = src.readUInt32LE(i + 4);
    if (middle >= 0x200000) return undefined;
    const digits = String(middle * 4294967296 + src.readUInt32LE(i));
    const exponent = ((high >>> 17) & 0x3fff) - 6176;
    const sign = high >>> 31 ? '-' : '';
    const scientific = digits.length - 1 + exponent;
    if (scientific >= 34 || scientific <= -7 || exponent > 0) {
      const rest = digits.length > 1 ? `.${digits.slice(1)}` : '';
      return `${sign}${digits[0]}${rest}E${scientific > 0 ? '+' : ''}${scientific}`;
    }
    if (exponent === 0) return sign + digits;
    const point = digits.length + exponent;
    return point > 0 ? `${sign}${digits.slice(0, point)}.${digits.slice(point)}` : `${sign}0.${'0'.repeat(-point)}${digits}`;
  }

  /** src[start, end) as a JSON string; bytes that are not UTF-8 are left to the library. */
  private quoted(start: number, end: number): void {
    const src = this.src;
    let extra = 0;
    let high = false;
    for (let k = start; k < end; k++) {
      const c = src[k]!;
      if (c >= 0x80) high = true;
      else extra += EXTRA[c]!;
    }
    if (high && !isUtf8(src.subarray(start, end))) throw UNSUPPORTED;
    this.reserve(end - start + extra + 2);
    const out = this.out;
    let at = this.at;
    out[at++] = 0x22;
    if (extra === 0 && end - start > 64) {
      at += src.copy(out, at, start, end);
    } else {
      for (let k = start; k < end; k++) {
        const c = src[k]!;
        if (c >= 0x80 || EXTRA[c] === 0) {
          out[at++] = c;
        } else if (EXTRA[c] === 1) {
          out[at++] = 0x5c;
          out[at++] = SHORT[c]!;
        } else {
          out[at++] = 0x5c;
          out[at++] = 0x75;
          out[at++] = 0x30;
          out[at++] = 0x30;
          out[at++] = HEX[c >> 4]!;
          out[at++] = HEX[c & 15]!;
        }
      }
    }
    out[at++] = 0x22;
    this.at = at;
  }

  /** A value in its type's wrapper: `open` ends with the opening quote of `text`. */
  private typed(open: string, text: string, close = '"}'): void {
    this.ascii(open);
    this.ascii(text);
    this.ascii(close);
  }

  private hex(byte: number): void {
    this.reserve(2);
    this.out[this.at++] = HEX[byte >> 4]!;
    this.out[this.at++] = HEX[byte & 15]!;
  }

  private byte(byte: number): void {
    this.reserve(1);
    this.out[this.at++] = byte;
  }

  /** ASCII text, a byte at a time: for a few bytes, cheaper than a call into Buffer's native code. */
  private ascii(text: string): void {
    this.reserve(text.length);
    const out = this.out;
    let at = this.at;
    for (let k = 0; k < text.length; k++) out[at++] = text.charCodeAt(k);
    this.at = at;
  }

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.at + bytes));
    this.out.copy(grown, 0, 0, this.at);
    this.out = grown;
  }
}
