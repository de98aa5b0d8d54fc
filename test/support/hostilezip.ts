/**
 * A zip writer for hostile archives: any entry name (`../x`, absolute paths, backslashes), any
 * Unix mode (symlinks), sizes and CRCs that lie, duplicate names. Entries are written with their
 * sizes in the local header (no data descriptor), in zip64 form when a declared size needs it.
 * The project's own writer (src/pipeline/zipwriter.ts) refuses to write such things.
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface HostileEntry {
  name: string;
  /** The entry's content (deflated here when `method` is 8). */
  data: Buffer;
  method?: 0 | 8;
  /** Unix mode with its file type bits; default a regular 0644 file. */
  mode?: number;
  /** Sizes and CRC to write instead of the true ones. */
  declaredSize?: number;
  declaredCompressedSize?: number;
  declaredCrc?: number;
}

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

const MAX_32 = 0xffffffff;
const VERSION = 45;
const MADE_BY_UNIX = (3 << 8) | VERSION;
const DOS_TIME = (((2026 - 1980) << 9) | (1 << 5) | 1) * 0x10000;

function zip64Extra(size: number, compressedSize: number, offset?: number): Buffer {
  const fields = [size, compressedSize, ...(offset === undefined ? [] : [offset])];
  const b = Buffer.alloc(4 + 8 * fields.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * fields.length, 2);
  fields.forEach((value, i) => b.writeBigUInt64LE(BigInt(value), 4 + 8 * i));
  return b;
}

export function hostileZip(entries: HostileEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const method = entry.method ?? 0;
    const stored = method === 8 ? deflateRawSync(entry.data) : entry.data;
    const size = entry.declaredSize ?? entry.data.length;
    const compressedSize = entry.declaredCompressedSize ?? stored.length;
    const crc = entry.declaredCrc ?? crc32(entry.data);
    const wide = size >= MAX_32 || compressedSize >= MAX_32;
    const localExtra = wide ? zip64Extra(size, compressedSize) : Buffer.alloc(0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(VERSION, 4);
    local.writeUInt16LE(1 << 11, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(DOS_TIME, 10);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(wide ? MAX_32 : compressedSize, 18);
    local.writeUInt32LE(wide ? MAX_32 : size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(localExtra.length, 28);
    parts.push(local, name, localExtra, stored);

    const centralExtra = wide ? zip64Extra(size, compressedSize) : Buffer.alloc(0);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(MADE_BY_UNIX, 4);
    c.writeUInt16LE(VERSION, 6);
    c.writeUInt16LE(1 << 11, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(DOS_TIME, 12);
    c.writeUInt32LE(crc >>> 0, 16);
    c.writeUInt32LE(wide ? MAX_32 : compressedSize, 20);
    c.writeUInt32LE(wide ? MAX_32 : size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(centralExtra.length, 30);
    c.writeUInt32LE((((entry.mode ?? S_IFREG | 0o644) & 0xffff) << 16) >>> 0, 38);
    c.writeUInt32LE(offset, 42);
    central.push(c, name, centralExtra);
    offset += local.length + name.length + localExtra.length + stored.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}
