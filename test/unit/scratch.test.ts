/** Scratch database names of verify --deep: valid on every engine, parsed back, judged stale. */
import { describe, expect, it } from 'vitest';
import { hostTag, isStaleScratch, parseScratchName, scratchName } from '../../src/core/scratch.js';

const started = new Date('2026-11-21T02:00:00Z');

describe('scratch names', () => {
  it.each(['crm', 'Shop-EU', 'a'.repeat(64), 'x_1-2', '9lives'])('for target %s: [a-z0-9_], at most 52 characters, parsed back', (target) => {
    const owner = { host: hostTag('db-host-1'), pid: 4_194_303, started };
    for (const random of [0, 0.5, 0.999999]) {
      const name = scratchName(target, owner, random);
      expect(name).toMatch(/^bk_verify_[a-z0-9_]+$/);
      expect(name.length).toBeLessThanOrEqual(52);
      expect(parseScratchName(name)).toEqual({ name, target: target.toLowerCase().replace(/-/g, '_').slice(0, 16), ...owner });
    }
  });

  it('differ between runs, hosts and random draws', () => {
    const names = new Set([
      scratchName('crm', { host: hostTag('a'), pid: 10, started }, 0.1),
      scratchName('crm', { host: hostTag('b'), pid: 10, started }, 0.1),
      scratchName('crm', { host: hostTag('a'), pid: 11, started }, 0.1),
      scratchName('crm', { host: hostTag('a'), pid: 10, started }, 0.2),
    ]);
    expect(names.size).toBe(4);
  });

  it('leave other databases alone', () => {
    for (const name of ['bk_verify_', 'bk_verify_crm', 'crm', 'bk_verify_crm_ab_1_2_3', 'BK_VERIFY_crm_abcd_1_2_abcd']) expect(parseScratchName(name)).toBeUndefined();
  });

  it('are stale when their process is gone on this host, or once old', () => {
    const here = { host: hostTag('here'), now: new Date(started.getTime() + 60_000), maxAgeMs: 3_600_000 };
    const mine = parseScratchName(scratchName('crm', { host: here.host, pid: 42, started }, 0))!;
    const theirs = parseScratchName(scratchName('crm', { host: hostTag('there'), pid: 42, started }, 0))!;
    expect(isStaleScratch(mine, { ...here, alive: () => true })).toBe(false);
    expect(isStaleScratch(mine, { ...here, alive: () => false })).toBe(true);
    expect(isStaleScratch(theirs, { ...here, alive: () => false })).toBe(false);
    const later = { ...here, now: new Date(started.getTime() + 3_600_001 + 1000), alive: () => true };
    expect(isStaleScratch(theirs, later)).toBe(true);
    expect(isStaleScratch(mine, later)).toBe(true);
  });
});
