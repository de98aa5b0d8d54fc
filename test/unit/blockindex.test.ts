import { describe, expect, it } from 'vitest';
import { indexFits } from '../../src/pipeline/inflate.js';
import { blockIndex, centralHeader, readBlockIndex } from '../../src/pipeline/zipformat.js';

const MiB = 1 << 20;

describe('blockIndex', () => {
  it('gives no index to an entry of one block', () => {
    expect(blockIndex(MiB, [])).toBeUndefined();
    expect(blockIndex(MiB, [500])).toBeUndefined();
  });

  it('lists every block while they fit, then runs of 2 and 4 blocks, then gives up', () => {
    expect(blockIndex(MiB, [10, 20, 30])).toEqual({ segment: MiB, lengths: [10, 20, 30] });
    const many = Array.from({ length: 20_001 }, (_, i) => 1000 + (i % 7));
    const paired = blockIndex(MiB, many)!;
    expect(paired.segment).toBe(2 * MiB);
    expect(paired.lengths).toHaveLength(10_001);
    expect(paired.lengths[0]).toBe(many[0]! + many[1]!);
    expect(paired.lengths.at(-1)).toBe(many.at(-1));
    expect(paired.lengths.reduce((a, b) => a + b, 0)).toBe(many.reduce((a, b) => a + b, 0));
    expect(blockIndex(MiB, Array.from({ length: 40_000 }, () => 1))!.segment).toBe(4 * MiB);
    expect(blockIndex(MiB, Array.from({ length: 64_001 }, () => 1))).toBeUndefined();
  });

  it('round-trips through a central header, and the largest index still fits its 64 KiB of extra fields', () => {
    const index = { segment: MiB, lengths: Array.from({ length: 16_000 }, (_, i) => 4_000_000_000 + i) };
    const header = centralHeader({ name: Buffer.from('db/x'), method: 8, date: new Date(), crc32: 0, compressedSize: 2 ** 33, size: 2 ** 34, offset: 2 ** 33, mode: 0o100644, index });
    const extraLength = header.readUInt16LE(30);
    expect(46 + 4 + extraLength).toBe(header.length);
    let at = 50;
    const ids: number[] = [];
    let data: Buffer | undefined;
    while (at < header.length) {
      const id = header.readUInt16LE(at);
      const size = header.readUInt16LE(at + 2);
      ids.push(id);
      if (id === 0x6b62) data = header.subarray(at + 4, at + 4 + size);
      at += 4 + size;
    }
    expect(ids).toEqual([0x0001, 0x5455, 0x6b62]);
    expect(readBlockIndex(data!)).toEqual(index);
  });

  it('reads only the version it writes', () => {
    const good = Buffer.from([1, 0, 0, 16, 0, 5, 0, 0, 0]);
    expect(readBlockIndex(good)).toEqual({ segment: MiB, lengths: [5] });
    expect(readBlockIndex(Buffer.from([2, ...good.subarray(1)]))).toBeUndefined();
    expect(readBlockIndex(good.subarray(0, 8))).toBeUndefined();
    expect(readBlockIndex(Buffer.from([1, 0, 0, 0, 0, 5, 0, 0, 0]))).toBeUndefined();
  });
});

describe('indexFits', () => {
  const fits = (segment: number, lengths: number[], compressedSize: number, size: number) => indexFits({ index: { segment, lengths }, compressedSize, size });

  it('takes an index whose segments cover the size and whose lengths add up', () => {
    expect(fits(MiB, [400_000, 300_000, 5], 700_005, 2 * MiB + 10)).toBe(true);
    expect(fits(MiB, [400_000, 300_000, 2], 700_002, 2 * MiB)).toBe(true);
  });

  it('refuses one that does not describe the entry', () => {
    expect(fits(MiB, [700_000], 700_000, MiB)).toBe(false);
    expect(fits(MiB, [400_000, 300_000, 5], 700_006, 2 * MiB + 10)).toBe(false);
    expect(fits(MiB, [400_000, 300_000, 5], 700_005, 3 * MiB + 1)).toBe(false);
    expect(fits(MiB, [400_000, 300_000, 5], 700_005, 2 * MiB - 1)).toBe(false);
    expect(fits(64 * MiB, [400_000, 300_000], 700_000, 100 * MiB)).toBe(false);
  });

  it('refuses a length longer than deflate makes a segment, which would be read whole', () => {
    expect(fits(MiB, [MiB + 70_000, 5], MiB + 70_005, MiB + 1)).toBe(false);
    expect(fits(MiB, [MiB + 100, 5], MiB + 105, MiB + 1)).toBe(true);
  });
});
