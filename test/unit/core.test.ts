import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/core/duration.js';
import { BACKUP_ID, TARGET_NAME, baseId, isPathRef, nextId } from '../../src/core/ids.js';
import { newestFirst } from '../../src/core/manifest.js';
import { suggest } from '../../src/core/suggest.js';

describe('ids', () => {
  it('formats <target>_<YYYYMMDD>_<HHMMSS> in UTC', () => {
    expect(baseId('crm', new Date('2026-11-21T02:00:00.999Z'))).toBe('crm_20261121_020000');
    expect(baseId('a-b_c', new Date('2026-01-02T23:59:59+02:00'))).toBe('a-b_c_20260102_215959');
  });

  it('gives a second backup in the same second _2, a third _3', () => {
    const taken = new Set<string>();
    const when = new Date('2026-11-21T02:00:00Z');
    for (const expected of ['crm_20261121_020000', 'crm_20261121_020000_2', 'crm_20261121_020000_3']) {
      const id = nextId('crm', when, (c) => taken.has(c));
      expect(id).toBe(expected);
      taken.add(id);
    }
  });

  it('parses the target back out of an id, underscores included', () => {
    expect(BACKUP_ID.exec('crm_eu_20261121_020000_2')?.slice(1)).toEqual(['crm_eu', '20261121', '020000', '2']);
    expect(BACKUP_ID.test('crm_2026112_020000')).toBe(false);
  });

  it.each([
    ['crm', true],
    ['a', true],
    ['A1_b-c', true],
    ['_crm', false],
    ['has space', false],
    ['x'.repeat(64), true],
    ['x'.repeat(65), false],
  ])('target name %s valid: %s', (name, valid) => {
    expect(TARGET_NAME.test(name)).toBe(valid);
  });

  it('tells paths from ids', () => {
    expect(isPathRef('crm_20261121_020000')).toBe(false);
    expect(isPathRef('latest')).toBe(false);
    expect(isPathRef('./x.zip')).toBe(true);
    expect(isPathRef('backup.zip')).toBe(true);
  });

  it('sorts newest first, a _2 above its base id', () => {
    const list = [
      { id: 'crm_20261121_020000', createdAt: '2026-11-21T02:00:00.100Z' },
      { id: 'crm_20261122_020000', createdAt: '2026-11-22T02:00:00.000Z' },
      { id: 'crm_20261121_020000_2', createdAt: '2026-11-21T02:00:00.100Z' },
    ];
    expect(list.sort(newestFirst).map((b) => b.id)).toEqual(['crm_20261122_020000', 'crm_20261121_020000_2', 'crm_20261121_020000']);
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['12h', 43_200_000],
    ['30d', 2_592_000_000],
    ['8w', 4_838_400_000],
    ['1y', 31_536_000_000],
    ['45', 45_000],
    [120, 120_000],
    ['5 minutes', undefined],
    ['-5m', undefined],
    ['', undefined],
  ])('%s -> %s ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('suggestions', () => {
  it('finds near misses and ignores far ones', () => {
    expect(suggest('tabels', ['tables', 'format', 'url'])).toBe('tables');
    expect(suggest('pgdump', ['pg_dump', 'sqlite'])).toBe('pg_dump');
    expect(suggest('zzzzzz', ['tables', 'format'])).toBeUndefined();
  });
});
