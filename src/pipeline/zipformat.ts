/**
 * The byte layout of a streamed zip archive (PKWARE APPNOTE 6.3.x): local headers with sizes
 * deferred to a data descriptor (bit 3), UTF-8 names (bit 11), Unix modes in the external
 * attributes, an Info-ZIP extended timestamp (0x5455) beside the DOS time, and zip64 wherever a
 * size, an offset or the entry count outgrows the classic fields. A deflated entry of more than
 * one block also carries a block index in its central header (0x6b62, below). Pure: buffers in,
 * buffers out.
 */

export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;

const SIG_LOCAL = 0x04034b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_END = 0x06054b50;

const FLAG_DESCRIPTOR = 1 << 3;
const FLAG_UTF8 = 1 << 11;
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
/** Made by Unix (3), spec 4.5: readers then take the mode from the high 16 bits of the attributes. */
const MADE_BY = (3 << 8) | VERSION_ZIP64;
const MAX_16 = 0xffff;
const MAX_32 = 0xffffffff;
const DOS_DIRECTORY = 0x10;

/** Unix file types, in the high bits of a mode. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export interface CentralRecord {
  name: Buffer;
  method: number;
  date: Date;
  crc32: number;
  compressedSize: number;
  size: number;
  offset: number;
  /** Unix mode including the file type bits (S_IFREG, S_IFDIR, S_IFLNK). */
  mode: number;
  /** A deflated entry's block index (blockIndex). */
  index?: BlockIndex;
}

/** A local header whose crc and sizes follow the data, in its data descriptor. */
export function localHeader(name: Buffer, method: number, date: Date): Buffer {
  const extra = timestampExtra(date);
  const b = Buffer.alloc(30 + name.length + extra.length);
  b.writeUInt32LE(SIG_LOCAL, 0);
  b.writeUInt16LE(VERSION_DEFAULT, 4);
  b.writeUInt16LE(FLAG_DESCRIPTOR | FLAG_UTF8, 6);
  b.writeUInt16LE(method, 8);
  b.writeUInt32LE(dosDateTime(date), 10);
  // crc32, compressed size and size stay 0: they are in the data descriptor.
  b.writeUInt16LE(name.length, 26);
  b.writeUInt16LE(extra.length, 28);
  name.copy(b, 30);
  extra.copy(b, 30 + name.length);
  return b;
}

/** The data descriptor; its sizes take 8 bytes each once either passes 4 GiB (zip64). */
export function dataDescriptor(crc32: number, compressedSize: number, size: number): Buffer {
  const wide = compressedSize >= MAX_32 || size >= MAX_32;
  const b = Buffer.alloc(wide ? 24 : 16);
  b.writeUInt32LE(SIG_DESCRIPTOR, 0);
  b.writeUInt32LE(crc32 >>> 0, 4);
  if (wide) {
    b.writeBigUInt64LE(BigInt(compressedSize), 8);
    b.writeBigUInt64LE(BigInt(size), 16);
  } else {
    b.writeUInt32LE(compressedSize, 8);
    b.writeUInt32LE(size, 12);
  }
  return b;
}

export function centralHeader(r: CentralRecord): Buffer {
  const big = [r.size >= MAX_32, r.compressedSize >= MAX_32, r.offset >= MAX_32];
  const zip64 = big.some(Boolean);
  const zip64Extra = zip64 ? zip64ExtraField([r.size, r.compressedSize, r.offset].filter((_, i) => big[i])) : Buffer.alloc(0);
  const extra = Buffer.concat([zip64Extra, timestampExtra(r.date), r.index ? blockIndexExtra(r.index) : Buffer.alloc(0)]);
  const b = Buffer.alloc(46 + r.name.length + extra.length);
  b.writeUInt32LE(SIG_CENTRAL, 0);
  b.writeUInt16LE(MADE_BY, 4);
  b.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_DEFAULT, 6);
  b.writeUInt16LE(FLAG_DESCRIPTOR | FLAG_UTF8, 8);
  b.writeUInt16LE(r.method, 10);
  b.writeUInt32LE(dosDateTime(r.date), 12);
  b.writeUInt32LE(r.crc32 >>> 0, 16);
  b.writeUInt32LE(big[1] ? MAX_32 : r.compressedSize, 20);
  b.writeUInt32LE(big[0] ? MAX_32 : r.size, 24);
  b.writeUInt16LE(r.name.length, 28);
  b.writeUInt16LE(extra.length, 30);
  // comment length, disk number start, internal attributes: 0
  b.writeUInt32LE((((r.mode & 0xffff) << 16) | ((r.mode & S_IFMT) === S_IFDIR ? DOS_DIRECTORY : 0)) >>> 0, 38);
  b.writeUInt32LE(big[2] ? MAX_32 : r.offset, 42);
  r.name.copy(b, 46);
  extra.copy(b, 46 + r.name.length);
  return b;
}

/**
 * The end of the archive: a zip64 end record and locator when the count, the central directory's
 * size or its offset outgrow the classic record, then the classic record (with 0xFFFF/0xFFFFFFFF
 * where the zip64 one holds the value).
 */
export function endOfArchive(count: number, centralOffset: number, centralSize: number, forceZip64 = false): Buffer {
  const zip64 = forceZip64 || count >= MAX_16 || centralOffset >= MAX_32 || centralSize >= MAX_32;
  const parts: Buffer[] = [];
  if (zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(SIG_ZIP64_END, 0);
    record.writeBigUInt64LE(44n, 4); // size of the rest of the record
    record.writeUInt16LE(MADE_BY, 12);
    record.writeUInt16LE(VERSION_ZIP64, 14);
    // number of this disk, disk where the central directory starts: 0
    record.writeBigUInt64LE(BigInt(count), 24);
    record.writeBigUInt64LE(BigInt(count), 32);
    record.writeBigUInt64LE(BigInt(centralSize), 40);
    record.writeBigUInt64LE(BigInt(centralOffset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
    locator.writeBigUInt64LE(BigInt(centralOffset + centralSize), 8);
    locator.writeUInt32LE(1, 16); // total number of disks
    parts.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(SIG_END, 0);
  end.writeUInt16LE(Math.min(count, MAX_16), 8);
  end.writeUInt16LE(Math.min(count, MAX_16), 10);
  end.writeUInt32LE(Math.min(centralSize, MAX_32), 12);
  end.writeUInt32LE(Math.min(centralOffset, MAX_32), 16);
  parts.push(end);
  return Buffer.concat(parts);
}

function zip64ExtraField(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}

/**
 * The block index, backupkit's own extra field (header ID 0x6b62, "bk"), in the central header
 * only: where a deflated entry's independent blocks (deflate.ts) start, so that a reader can
 * inflate them side by side. Other readers skip it, as the format asks of unknown fields.
 *
 *   u8      version (1)
 *   u32     segment: uncompressed bytes in every segment but the last, which holds the rest
 *   u32 * n compressed length of each segment, in order; they add up to the compressed size
 *
 * A segment is one deflate block, or a run of 2 or 4 of them on an entry so large that one
 * length per block would not fit the 64 KiB of a header's extra fields. Larger entries get no
 * index and are inflated in one stream, like any archive written without one.
 */
export interface BlockIndex {
  segment: number;
  lengths: number[];
}

export const BLOCK_INDEX_ID = 0x6b62;
const BLOCK_INDEX_VERSION = 1;
/** Leaves room beside the index for the zip64 and timestamp fields within a header's 64 KiB. */
const MAX_SEGMENTS = 16_000;
const MAX_RUN = 4;

/** The index for an entry deflated in blocks of `blockSize` with these compressed lengths. */
export function blockIndex(blockSize: number, blocks: number[]): BlockIndex | undefined {
  if (blocks.length < 2) return undefined;
  let run = 1;
  while (Math.ceil(blocks.length / run) > MAX_SEGMENTS) run *= 2;
  if (run > MAX_RUN) return undefined;
  const lengths: number[] = [];
  for (let i = 0; i < blocks.length; i += run) lengths.push(blocks.slice(i, i + run).reduce((a, b) => a + b, 0));
  return { segment: blockSize * run, lengths };
}

function blockIndexExtra(index: BlockIndex): Buffer {
  const b = Buffer.alloc(4 + 5 + 4 * index.lengths.length);
  b.writeUInt16LE(BLOCK_INDEX_ID, 0);
  b.writeUInt16LE(b.length - 4, 2);
  b.writeUInt8(BLOCK_INDEX_VERSION, 4);
  b.writeUInt32LE(index.segment, 5);
  index.lengths.forEach((length, i) => b.writeUInt32LE(length, 9 + 4 * i));
  return b;
}

/** The index in an extra field's data, or undefined when it is not one this version writes. */
export function readBlockIndex(data: Buffer): BlockIndex | undefined {
  if (data.length < 9 || (data.length - 5) % 4 !== 0 || data.readUInt8(0) !== BLOCK_INDEX_VERSION) return undefined;
  const segment = data.readUInt32LE(1);
  const lengths: number[] = [];
  for (let at = 5; at < data.length; at += 4) lengths.push(data.readUInt32LE(at));
  return segment > 0 ? { segment, lengths } : undefined;
}

/** Info-ZIP's extended timestamp: the modification time in whole UTC seconds, free of time zones. */
function timestampExtra(date: Date): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b.writeUInt8(1, 4); // flags: modification time present
  b.writeInt32LE(Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.floor(date.getTime() / 1000))), 5);
  return b;
}

/** MS-DOS date and time in local time, as Info-ZIP writes them; clamped to 1980..2107. */
export function dosDateTime(date: Date): number {
  const year = date.getFullYear();
  if (year < 1980) return (1 << 21) | (1 << 16);
  if (year > 2107) return ((127 << 25) | (12 << 21) | (31 << 16) | (23 << 11) | (59 << 5) | 29) >>> 0;
  const day = ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  return ((day << 16) | time) >>> 0;
}
