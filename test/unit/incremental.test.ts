/**
 * The pure parts of differential backups: when a full backup is due, which files a differential
 * one may take from its base, what retention keeps for a base, what deleting a base breaks, and
 * the order copy sends bases in.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { brokenBases, dependentsOf, withBases } from '../../src/core/chain.js';
import { ConfigError } from '../../src/core/errors.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { type ChainBackup, type ChainFacts, planChain } from '../../src/core/incremental.js';
import type { EntryRecord } from '../../src/core/manifest.js';
import { type RetentionPolicy, applyRetention } from '../../src/core/retention.js';
import { baseIndex, unchangedEntry } from '../../src/pipeline/incremental.js';

const DAY = 86_400_000;
const at = (day: number, hour = 2) => new Date(Date.UTC(2026, 0, 1 + day, hour)).toISOString();
const full = (day: number, parts = ['db', 'files']): ChainBackup => ({ id: `a_${day}`, createdAt: at(day), parts });
const diff = (day: number, base: number): ChainBackup => ({ id: `a_${day}`, createdAt: at(day), parts: ['db', 'files'], base: `a_${base}` });

function facts(backups: ChainBackup[], now: string, extra: Partial<ChainFacts> = {}): ChainFacts {
  return { full: false, now: new Date(now), fullEveryMs: 7 * DAY, backups, archived: new Set(backups.map((b) => b.id)), lastVerify: new Map(), ...extra };
}

describe('planChain: full or differential', () => {
  const cases: [string, ChainFacts, ReturnType<typeof planChain>][] = [
    ['no backup yet', facts([], at(0)), { kind: 'full', reason: 'there is no full backup yet' }],
    ['only database backups', facts([full(0, ['db'])], at(1)), { kind: 'full', reason: 'there is no full backup yet' }],
    ['--full', facts([full(0)], at(1), { full: true }), { kind: 'full', reason: '--full was given' }],
    ['a day after a full one', facts([full(0)], at(1)), { kind: 'differential', base: 'a_0' }],
    ['the newest is differential: its base', facts([full(0), diff(1, 0), diff(2, 0)], at(3)), { kind: 'differential', base: 'a_0' }],
    ['a later database-only backup does not count', facts([full(0), full(2, ['db'])], at(3)), { kind: 'differential', base: 'a_0' }],
    ['six days on', facts([full(0), diff(5, 0)], at(6)), { kind: 'differential', base: 'a_0' }],
    ['seven days on', facts([full(0), diff(6, 0)], at(7)), { kind: 'full', reason: 'the last full backup a_0 is 7d old (fullEvery 7d)' }],
    // A scheduled run that starts a few seconds early still gets its weekly full backup.
    ['seven days less 30 s on', facts([full(0)], new Date(Date.parse(at(7)) - 30_000).toISOString()), { kind: 'full', reason: 'the last full backup a_0 is 7d old (fullEvery 7d)' }],
    ['seven days less 2 h on', facts([full(0)], at(7, 0)), { kind: 'differential', base: 'a_0' }],
    ['the base sidecar is gone', facts([diff(1, 0)], at(2)), { kind: 'full', reason: 'the last full backup a_0 is missing: no storage holds its sidecar' }],
    ['the base archive is gone', facts([full(0), diff(1, 0)], at(2), { archived: new Set(['a_1']) }), { kind: 'full', reason: 'the last full backup a_0 is bad: its archive is missing or truncated in every storage' }],
    [
      'the base failed its last verify',
      facts([full(0)], at(2), { lastVerify: new Map([['a_0', { ok: false, error: 'entry files/0/x: checksum mismatch' }]]) }),
      { kind: 'full', reason: 'the last full backup a_0 is bad: its last verify failed (entry files/0/x: checksum mismatch)' },
    ],
    ['the base passed its last verify', facts([full(0)], at(2), { lastVerify: new Map([['a_0', { ok: true, error: null }]]) }), { kind: 'differential', base: 'a_0' }],
    ['a second full one is the base', facts([full(0), diff(1, 0), full(7), diff(8, 7)], at(9)), { kind: 'differential', base: 'a_7' }],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(planChain(input)).toEqual(expected);
  });
});

describe('unchangedEntry: what a differential backup takes from its base', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backupkit-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const mtime = new Date('2026-01-01T10:00:00.123Z');
  const file = path.join(dir, 'f.txt');
  writeFileSync(file, 'hello');
  chmodSync(file, 0o640);
  utimesSync(file, mtime, mtime);
  const sha = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'; // sha256("hello")
  const entries: (EntryRecord & { mode?: number; mtime?: string })[] = [
    { path: 'files/0/f.txt', size: 5, sha256: sha, mode: 0o640, mtime: mtime.toISOString() },
    { path: 'files/0/link', size: 5, sha256: sha, mode: 0o777, mtime: mtime.toISOString() },
    { path: 'db/dump.sql', size: 5, sha256: sha },
  ];
  const st = statSync(file);
  type Change = Partial<{ size: number; mtime: Date; mode: number; name: string; compare: 'metadata' | 'content'; sha: string }>;
  const cases: [string, Change, boolean][] = [
    ['the same size, mtime and mode', {}, true],
    ['another size', { size: 6 }, false],
    ['another mtime', { mtime: new Date(mtime.getTime() + 1) }, false],
    ['another mode', { mode: 0o644 }, false],
    ['a file the base does not hold', { name: 'files/0/new.txt' }, false],
    ['a base entry that may be a symlink (mode 0777)', { name: 'files/0/link', mode: 0o777 }, false],
    ['content: the same bytes', { compare: 'content' }, true],
    ['content: other bytes of the same size and mtime', { compare: 'content', sha: '0'.repeat(64) }, false],
  ];
  it.each(cases)('%s', async (_name, change, reused) => {
    const index = baseIndex('a_0', entries.map((e) => (e.path === 'files/0/f.txt' && change.sha ? { ...e, sha256: change.sha } : e)), change.compare ?? 'metadata');
    const found = await unchangedEntry(index, change.name ?? 'files/0/f.txt', file, { size: change.size ?? st.size, mtime: change.mtime ?? st.mtime, mode: change.mode ?? st.mode });
    if (reused) expect(found).toEqual({ path: 'files/0/f.txt', size: 5, sha256: sha, mode: 0o640, mtime: mtime.toISOString(), base: 'a_0' });
    else expect(found).toBeUndefined();
  });

  it('indexes only the files a full backup stores itself', () => {
    const index = baseIndex('a_0', [...entries, { path: 'files/0/old', size: 1, sha256: sha, mode: 0o600, mtime: mtime.toISOString(), base: 'a_x' }], 'metadata');
    expect([...index.files.keys()]).toEqual(['files/0/f.txt', 'files/0/link']);
  });
});

describe('applyRetention keeps the bases kept backups need', () => {
  const item = (id: string, day: number, base?: string) => ({ id, createdAt: at(day), good: true, ...(base ? { base } : {}) });
  // A full backup on days 0 and 7, differential ones between.
  const week = [item('f0', 0), ...[1, 2, 3, 4, 5, 6].map((d) => item(`d${d}`, d, 'f0')), item('f7', 7), item('d8', 8, 'f7'), item('d9', 9, 'f7')];
  const run = (items: typeof week, policy: RetentionPolicy) => {
    const result = applyRetention(items, policy, new Date(at(20)));
    return { kept: Object.fromEntries(result.kept.map((k) => [k.item.id, k.reasons])), removed: result.removed.map((r) => r.id) };
  };
  const cases: [string, typeof week, RetentionPolicy, ReturnType<typeof run>][] = [
    ['the newest two need the second full one', week, { keepLast: 2 }, { kept: { d9: ['keep-last'], d8: ['keep-last'], f7: ['base-of:d9', 'base-of:d8'] }, removed: ['d6', 'd5', 'd4', 'd3', 'd2', 'd1', 'f0'] }],
    [
      'a full one kept by a rule and as a base',
      week,
      { keepLast: 3 },
      { kept: { d9: ['keep-last'], d8: ['keep-last'], f7: ['keep-last', 'base-of:d9', 'base-of:d8'] }, removed: ['d6', 'd5', 'd4', 'd3', 'd2', 'd1', 'f0'] },
    ],
    [
      'reaching back into the first week',
      week,
      { keepLast: 4 },
      { kept: { d9: ['keep-last'], d8: ['keep-last'], f7: ['keep-last', 'base-of:d9', 'base-of:d8'], d6: ['keep-last'], f0: ['base-of:d6'] }, removed: ['d5', 'd4', 'd3', 'd2', 'd1'] },
    ],
    [
      'weekly: the week ends need their bases',
      week,
      { keepWeekly: 2 },
      // ISO week 1 of 2026 ends on Sunday 01-04 (d3); d9 (01-10) is the newest of week 2.
      { kept: { d9: ['keep-weekly'], f7: ['base-of:d9'], d3: ['keep-weekly'], f0: ['base-of:d3'] }, removed: ['d8', 'd6', 'd5', 'd4', 'd2', 'd1'] },
    ],
    ['a base that is gone is no reason', week.filter((i) => i.id !== 'f7'), { keepLast: 1 }, { kept: { d9: ['keep-last'] }, removed: ['d8', 'd6', 'd5', 'd4', 'd3', 'd2', 'd1', 'f0'] }],
    ['no rule: only the newest, and its base', week, {}, { kept: { d9: ['newest'], f7: ['base-of:d9'] }, removed: ['d8', 'd6', 'd5', 'd4', 'd3', 'd2', 'd1', 'f0'] }],
  ];
  it.each(cases)('%s', (_name, items, policy, expected) => {
    expect(run(items, policy)).toEqual(expected);
  });
});

describe('brokenBases: what deleting a base breaks', () => {
  const held = [
    { id: 'f0', storage: 'local' },
    { id: 'f0', storage: 'offsite' },
    { id: 'd1', storage: 'local', base: 'f0' },
    { id: 'd2', storage: 'offsite', base: 'f0' },
    { id: 'f3', storage: 'local' },
  ];
  const cases: [string, { id: string; storage: string }[], ReturnType<typeof brokenBases>][] = [
    ['from one storage, while the other keeps a copy', [{ id: 'f0', storage: 'local' }], []],
    ['from both', [{ id: 'f0', storage: 'local' }, { id: 'f0', storage: 'offsite' }], [{ base: 'f0', dependents: ['d1', 'd2'] }]],
    ['with one of its dependents', [{ id: 'f0', storage: 'local' }, { id: 'f0', storage: 'offsite' }, { id: 'd1', storage: 'local' }], [{ base: 'f0', dependents: ['d2'] }]],
    ['with all of its dependents', [{ id: 'f0', storage: 'local' }, { id: 'f0', storage: 'offsite' }, { id: 'd1', storage: 'local' }, { id: 'd2', storage: 'offsite' }], []],
    ['a full backup nothing needs', [{ id: 'f3', storage: 'local' }], []],
  ];
  it.each(cases)('%s', (_name, removing, expected) => {
    expect(brokenBases(held, removing)).toEqual(expected);
  });

  it('names the dependents of a base once each', () => {
    expect(dependentsOf('f0', [...held, { id: 'd1', storage: 'offsite', base: 'f0' }])).toEqual(['d1', 'd2']);
  });
});

describe('withBases: copy sends bases first', () => {
  const f0 = { id: 'f0' };
  const d1 = { id: 'd1', base: 'f0' };
  const d2 = { id: 'd2', base: 'f0' };
  const d9 = { id: 'd9', base: 'f8' };
  const source = [d2, d1, f0, d9];
  it.each([
    ['all of them, newest first', [d2, d1, f0], new Set<string>(), { order: [f0, d2, d1], missing: [] }],
    ['a differential one alone brings its base', [d1], new Set<string>(), { order: [f0, d1], missing: [] }],
    ['not when the destination has the base', [d1], new Set(['f0']), { order: [d1], missing: [] }],
    ['a base neither storage holds', [d9], new Set<string>(), { order: [d9], missing: [{ id: 'd9', base: 'f8' }] }],
  ] as const)('%s', (_name, wanted, present, expected) => {
    expect(withBases(wanted, source, present)).toEqual(expected);
  });
});

describe('config: incremental', () => {
  const load = (incremental: unknown) => resolveConfig({ targets: { app: { driver: 'sqlite', path: 'a.sqlite', files: ['up'], incremental } } }, '/etc/bk/backupkit.config.json', { env: {}, drivers: createDriverRegistry() });
  const problems = (incremental: unknown) => {
    try {
      load(incremental);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };

  it('resolves fullEvery to milliseconds, comparing metadata by default', () => {
    expect(load({ fullEvery: '7d' }).targets.get('app')!.incremental).toEqual({ fullEveryMs: 7 * DAY, compare: 'metadata' });
    expect(load({ fullEvery: 3600, compare: 'content' }).targets.get('app')!.incremental).toEqual({ fullEveryMs: 3_600_000, compare: 'content' });
    expect(load(undefined).targets.get('app')!.incremental).toBeUndefined();
    // Not a driver option.
    expect(load({ fullEvery: '7d' }).targets.get('app')!.options).not.toHaveProperty('incremental');
  });

  it.each([
    [{}, 'targets.app.incremental.fullEvery'],
    [{ fullEvery: 'weekly' }, 'targets.app.incremental.fullEvery: expected a duration'],
    [{ fullEvery: '7d', compare: 'hash' }, 'targets.app.incremental.compare'],
    [{ fullEvery: '7d', fullEvry: '1d' }, 'targets.app.incremental.fullEvry: unknown key'],
  ])('%j is a config error naming the key', (incremental, expected) => {
    expect(problems(incremental).join('\n')).toContain(expected);
  });
});
