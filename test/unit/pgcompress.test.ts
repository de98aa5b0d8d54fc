import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { zlibHeader } from '../../src/drivers/postgres/pgcompress.js';

describe('zlibHeader', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9])('is the header zlib itself writes at level %i', (level) => {
    expect(zlibHeader(level)).toEqual(deflateSync(Buffer.from('some data'), { level }).subarray(0, 2));
  });
});
