/** doctor's wording: ages and limits as durations are written, messages on one line. */
import { describe, expect, it } from 'vitest';
import { oneLine } from '../../src/app/doctor.js';
import { formatSpan } from '../../src/app/doctor/backups.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('formatSpan', () => {
  it.each([
    [0, '0s'],
    [59 * S + 999, '59s'],
    [12 * M + 30 * S, '12m'],
    [31 * H, '31h'],
    [25 * H + 30 * M, '25h30m'],
    [25 * H + 5 * M + 59 * S, '25h05m'],
    [48 * H + 10 * M, '2d'],
    [3 * D + 4 * H + 59 * M, '3d4h'],
  ])('an age of %i ms reads %s', (ms, text) => {
    expect(formatSpan(ms)).toBe(text);
  });

  it.each([
    [25 * H, '25h'],
    [7 * D, '7d'],
    [90 * M, '90m'],
    [90 * S, '90s'],
    [10 * S, '10s'],
    [1500, '2s'],
  ])('a limit of %i ms reads %s', (ms, text) => {
    expect(formatSpan(ms, { exact: true })).toBe(text);
  });
});

describe('oneLine', () => {
  it('keeps a message of one line, and joins the first and last line of a longer one', () => {
    expect(oneLine('cannot connect')).toBe('cannot connect');
    expect(oneLine('mariadb exited with code 1:\n  \n  ERROR 2002 (HY000): Can\'t connect\n')).toBe("mariadb exited with code 1: ERROR 2002 (HY000): Can't connect");
    expect(oneLine('a\nb\nc')).toBe('a c');
  });
});
