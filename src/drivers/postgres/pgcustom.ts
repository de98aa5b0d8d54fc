/**
 * pg_dump's custom format, uncompressed (`-Fc -Z0`), read as it streams, as pg_dump writes it to a
 * pipe (pg_backup_archiver.c ReadHead/ReadToc, pg_backup_custom.c): "PGDMP", the archive version,
 * the sizes of an int and of an offset, the format, the compression, the creation time and names;
 * the TOC, one entry per object (dump id, tag, desc, namespace, ...); then one block per entry with
 * data: a type byte, the dump id, and chunks (an int length, then the bytes) ended by a zero length.
 * An int is a sign byte and `intSize` bytes, least significant first; a string is an int length
 * (-1: none) and its bytes. Large objects come in BLOBS blocks (per object: its oid, then chunks).
 * PgCustomReader walks this layout for the row counter (pgcount.ts) and the compressor
 * (pgcompress.ts).
 */

const version = (major: number, minor: number, rev = 0) => (major * 256 + minor) * 256 + rev;
/** PostgreSQL 9.0's pg_dump (1.12) up to 17's and 18's (1.16). Other versions are not guessed at. */
const OLDEST = version(1, 12);
const NEWEST = version(1, 16, 255);
const FORMAT_CUSTOM = 1;
export const BLOCK_DATA = 1;
export const BLOCK_BLOBS = 3;
/** From archive version 1.15 (PostgreSQL 16) the header names a compression method in a byte. */
export const COMPRESSION_BYTE = version(1, 15);

class NeedMore extends Error {}

/** Reads the header's and TOC's primitives from one buffer; throws NeedMore at its end. */
class Cursor {
  intSize = 4;
  constructor(
    private readonly buffer: Buffer,
    public position = 0,
  ) {}

  private need(bytes: number): void {
    if (this.position + bytes > this.buffer.length) throw new NeedMore();
  }

  byte(): number {
    this.need(1);
    return this.buffer[this.position++]!;
  }

  bytes(n: number): Buffer {
    this.need(n);
    this.position += n;
    return this.buffer.subarray(this.position - n, this.position);
  }

  int(): number {
    this.need(1 + this.intSize);
    const value = readInt(this.buffer, this.position, this.intSize);
    this.position += 1 + this.intSize;
    return value;
  }

  /** A string, or undefined for a null one. */
  string(): string | undefined {
    const length = this.int();
    return length < 0 ? undefined : this.bytes(length).toString('utf8');
  }

  skipString(): boolean {
    const length = this.int();
    if (length > 0) this.bytes(length);
    return length >= 0;
  }
}

function readInt(buffer: Buffer, at: number, intSize: number): number {
  let value = 0;
  for (let i = intSize; i >= 1; i--) value = value * 256 + buffer[at + i]!;
  return buffer[at] ? -value : value;
}

/** An int as pg_dump writes it (WriteInt): a sign byte, then `intSize` bytes, least significant first. */
export function writeInt(value: number, intSize: number): Buffer {
  const out = Buffer.alloc(1 + intSize);
  out[0] = value < 0 ? 1 : 0;
  let rest = Math.abs(value);
  for (let i = 1; i <= intSize; i++) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

export interface Toc {
  /** The header and TOC end here; the data blocks follow. */
  end: number;
  version: number;
  intSize: number;
  /** Where the header says whether the data is compressed: a byte from 1.15 on, an int before. */
  compressionAt: number;
  /** The names (`schema.table`) of the TABLE DATA entries, by dump id, in TOC order. */
  tables: Map<number, string>;
}

/** The header and TOC at the start of `buffer`, or NeedMore. */
function readToc(buffer: Buffer): Toc {
  const c = new Cursor(buffer);
  if (c.bytes(5).toString('latin1') !== 'PGDMP') throw new Error('not a pg_dump custom-format archive');
  const major = c.byte();
  const minor = c.byte();
  const v = version(major, minor, major > 1 || (major === 1 && minor > 0) ? c.byte() : 0);
  if (v < OLDEST || v > NEWEST) throw new Error(`pg_dump archive version ${major}.${minor} is not one this reader knows`);
  c.intSize = c.byte();
  if (c.intSize < 1 || c.intSize > 6) throw new Error(`pg_dump archive: unexpected integer size ${c.intSize}`);
  const offSize = c.byte();
  if (c.byte() !== FORMAT_CUSTOM) throw new Error('pg_dump archive: not in custom format');
  const compressionAt = c.position;
  const compressed = v >= COMPRESSION_BYTE ? c.byte() !== 0 : c.int() !== 0;
  if (compressed) throw new Error('pg_dump archive: the data is compressed (expected --compress=0)');
  for (let i = 0; i < 7; i++) c.int(); // creation time
  c.skipString(); // database
  c.skipString(); // server version
  c.skipString(); // pg_dump version

  const tables = new Map<number, string>();
  const entries = c.int();
  for (let i = 0; i < entries; i++) {
    const dumpId = c.int();
    c.int(); // had a data dumper
    c.skipString(); // table oid
    c.skipString(); // oid
    const tag = c.string();
    const desc = c.string();
    c.int(); // section
    c.skipString(); // definition
    c.skipString(); // drop statement
    c.skipString(); // COPY statement
    const namespace = c.string();
    c.skipString(); // tablespace
    if (v >= version(1, 14)) c.skipString(); // table access method
    if (v >= version(1, 16)) c.int(); // relkind
    c.skipString(); // owner
    c.skipString(); // "with oids"
    while (c.skipString()); // dependencies, ended by a null string
    c.byte(); // data offset flag
    c.bytes(offSize); // data offset
    if (desc === 'TABLE DATA' && tag !== undefined) tables.set(dumpId, `${namespace ?? 'public'}.${tag}`);
  }
  return { end: c.position, version: v, intSize: c.intSize, compressionAt, tables };
}

/** What PgCustomReader finds in an archive, in order. */
export interface PgCustomListener {
  /** The header and TOC, as they are in the archive. */
  head(bytes: Buffer, toc: Toc): void;
  /** A block starts: BLOCK_DATA (a table's rows and the like) or BLOCK_BLOBS (large objects). */
  block(type: number, dumpId: number): void;
  /** A large object of a BLOBS block starts. */
  blob(oid: number): void;
  /** Bytes of the current block's data or large object, without the chunk lengths around them. */
  data(chunk: Buffer, start: number, end: number): void;
  /** The current block's data, or the current large object, ends. */
  dataEnd(): void;
  /** The current BLOBS block's list of large objects ends. */
  blobsEnd(): void;
}

type BlockState = 'type' | 'dataId' | 'dataChunk' | 'blobsId' | 'blobOid' | 'blobChunk';

/** An uncompressed custom-format archive (`pg_dump -Fc -Z0`), read as it streams; never throws. */
export class PgCustomReader {
  private head: Buffer[] = [];
  private headBytes = 0;
  private nextAttempt = 0;
  toc: Toc | undefined;
  private state: BlockState = 'type';
  private readonly token = Buffer.alloc(8);
  private have = 0;
  private need = 1;
  /** Bytes of the current chunk still to pass. */
  private remaining = 0;
  error: Error | undefined;

  constructor(private readonly listener: PgCustomListener) {}

  write(chunk: Buffer): void {
    if (this.error) return;
    try {
      if (this.toc) this.blocks(chunk, 0);
      else this.gatherToc(chunk);
    } catch (error) {
      this.error = error as Error;
    }
  }

  /** Everything read so far while the TOC is not yet read (nothing once it is). */
  unread(): Buffer[] {
    return this.toc ? [] : this.head;
  }

  /** The input has ended: a TOC still waiting for its next try is read now. */
  finish(): void {
    if (this.toc || this.error || this.head.length === 0) return;
    this.nextAttempt = 0;
    try {
      this.gatherToc(Buffer.alloc(0));
    } catch (error) {
      this.error = error as Error;
    }
  }

  /** True once the archive ended where a complete one ends: between blocks. */
  get complete(): boolean {
    return !this.error && this.toc !== undefined && this.state === 'type' && this.have === 0 && this.remaining === 0;
  }

  /** The TOC is read once it is all there; tries are spaced out so a large TOC is not re-read often. */
  private gatherToc(chunk: Buffer): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < this.nextAttempt) return;
    const buffer = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head, this.headBytes);
    let toc: Toc;
    try {
      toc = readToc(buffer);
    } catch (error) {
      if (!(error instanceof NeedMore)) throw error;
      this.head = [buffer];
      this.nextAttempt = this.headBytes * 2;
      return;
    }
    this.toc = toc;
    this.head = [];
    this.listener.head(buffer.subarray(0, toc.end), toc);
    this.blocks(buffer, toc.end);
  }

  private blocks(chunk: Buffer, from: number): void {
    const intBytes = 1 + this.toc!.intSize;
    let offset = from;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const end = Math.min(chunk.length, offset + this.remaining);
        this.listener.data(chunk, offset, end);
        this.remaining -= end - offset;
        offset = end;
        continue;
      }
      const need = this.need;
      if (this.have === 0 && chunk.length - offset >= need) {
        // The whole token is here (the usual case: one per row): read it in place.
        this.need = intBytes;
        this.step(chunk, offset);
        offset += need;
        continue;
      }
      const take = Math.min(need - this.have, chunk.length - offset);
      chunk.copy(this.token, this.have, offset, offset + take);
      this.have += take;
      offset += take;
      if (this.have < need) return;
      this.have = 0;
      this.need = intBytes;
      this.step(this.token, 0);
    }
  }

  /** Act on the token (a block type byte, or an int) at `at` in `bytes`. */
  private step(bytes: Buffer, at: number): void {
    if (this.state === 'type') {
      const type = bytes[at]!;
      if (type === BLOCK_DATA) this.state = 'dataId';
      else if (type === BLOCK_BLOBS) this.state = 'blobsId';
      else throw new Error(`pg_dump archive: unexpected block type ${type}`);
      return;
    }
    const value = readInt(bytes, at, this.toc!.intSize);
    switch (this.state) {
      case 'dataId':
        this.listener.block(BLOCK_DATA, value);
        this.state = 'dataChunk';
        return;
      case 'blobsId':
        this.listener.block(BLOCK_BLOBS, value);
        this.state = 'blobOid';
        return;
      case 'blobOid':
        if (value === 0) {
          this.listener.blobsEnd();
          this.nextBlock();
          return;
        }
        this.listener.blob(value);
        this.state = 'blobChunk';
        return;
      case 'dataChunk':
      case 'blobChunk':
        if (value < 0) throw new Error(`pg_dump archive: invalid chunk length ${value}`);
        if (value > 0) {
          this.remaining = value;
          return;
        }
        this.listener.dataEnd();
        if (this.state === 'dataChunk') this.nextBlock();
        else this.state = 'blobOid';
    }
  }

  private nextBlock(): void {
    this.state = 'type';
    this.need = 1;
  }
}
