import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';

const drivers = createDriverRegistry();
const now = () => new Date('2026-12-07T12:00:00Z');
const load = (raw: unknown, env: NodeJS.ProcessEnv = {}) => resolveConfig(raw, '/etc/bk/backupkit.config.json', { env, drivers, now });
const problems = (raw: unknown) => {
  try {
    load(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};
const demo = (extra: Record<string, unknown> = {}) => ({ driver: 'sqlite', path: 'demo.sqlite', ...extra });

describe('schedules, maxAge, notify and daemon keys', () => {
  it('takes a target schedule over defaults, and gives daily schedules a 25h maxAge', () => {
    const config = load({
      defaults: { schedule: '0 2 * * *', verifySchedule: '0 4 * * 0', verifyDeep: true, timezone: 'Europe/Berlin' },
      targets: { a: demo(), b: demo({ schedule: '*/10 * * * * *' }), c: demo({ schedule: '0 3 * * 1' }), d: demo({ maxAge: '2d' }) },
    });
    const a = config.targets.get('a')!;
    expect([a.schedule, a.verifySchedule, a.verifyDeep, a.maxAgeMs]).toEqual(['0 2 * * *', '0 4 * * 0', true, 25 * 3_600_000]);
    expect(config.targets.get('b')!.schedule).toBe('*/10 * * * * *');
    expect(config.targets.get('b')!.maxAgeMs).toBe(25 * 3_600_000);
    expect(config.targets.get('c')!.maxAgeMs).toBeUndefined();
    expect(config.targets.get('d')!.maxAgeMs).toBe(2 * 86_400_000);
    expect(config.timezone).toBe('Europe/Berlin');
  });

  it('names the key and shows the expression of a bad schedule', () => {
    expect(problems({ targets: { a: demo({ schedule: '0 2 * *' }) } })).toEqual([
      'targets.a.schedule: "0 2 * *" is not a cron expression: expected 5 fields (minute hour day month weekday), or 6 with seconds first, got 4',
    ]);
    expect(problems({ defaults: { verifySchedule: '61 * * * *' }, targets: { a: demo() } })[0]).toMatch(/^defaults\.verifySchedule: "61 \* \* \* \*" is not a valid cron expression: .*minute/);
    expect(problems({ defaults: { timezone: 'Mars/Olympus' }, targets: {} })[0]).toMatch(/^defaults\.timezone: "Mars\/Olympus" is not a known time zone/);
  });

  it('resolves notify channels; a blank url turns its channel off', () => {
    const config = load({
      defaults: {
        notify: {
          on: ['failure', 'success'],
          email: { url: 'smtp://u:p@127.0.0.1:2525', from: 'bk@example.com', to: 'ops@example.com' },
          webhook: { url: '${HOOK:-}' },
          ping: { url: 'http://127.0.0.1:9/ping' },
        },
      },
      targets: { a: demo(), b: demo({ notify: { on: 'always', webhook: { url: 'https://hooks.example.com/x' } } }) },
    });
    expect(config.notify).toEqual({
      onFailure: true,
      onSuccess: true,
      email: { url: 'smtp://u:p@127.0.0.1:2525', from: 'bk@example.com', to: ['ops@example.com'] },
      webhook: undefined,
      ping: { url: 'http://127.0.0.1:9/ping' },
      at: 'defaults.notify',
    });
    expect(config.targets.get('a')!.notify).toEqual(config.notify);
    expect(config.targets.get('b')!.notify).toMatchObject({ onFailure: true, onSuccess: true, email: undefined, webhook: { url: 'https://hooks.example.com/x' }, at: 'targets.b.notify' });
    expect(problems({ defaults: { notify: { email: { url: 'http://x', from: 'a', to: ['b'] } } }, targets: {} })).toEqual(['defaults.notify.email.url: expected a smtp:// or smtps:// URL, got a http: URL']);
    expect(problems({ defaults: { notify: { on: ['sometimes'] } }, targets: {} })[0]).toMatch(/^defaults\.notify\.on/);
  });

  it('listens on loopback unless listenPublic says otherwise', () => {
    expect(load({ daemon: { listen: '127.0.0.1:9180' }, targets: {} }).daemon).toEqual({ listen: { host: '127.0.0.1', port: 9180 }, concurrency: 1 });
    expect(load({ daemon: { listen: ':0', concurrency: 2 }, targets: {} }).daemon).toEqual({ listen: { host: '127.0.0.1', port: 0 }, concurrency: 2 });
    expect(load({ daemon: { listen: '[::1]:9180' }, targets: {} }).daemon.listen).toEqual({ host: '::1', port: 9180 });
    expect(problems({ daemon: { listen: '0.0.0.0:9180' }, targets: {} })[0]).toMatch(/^daemon\.listen: 0\.0\.0\.0 is not a loopback address.*listenPublic/);
    expect(load({ daemon: { listen: '0.0.0.0:9180', listenPublic: true }, targets: {} }).daemon.listen).toEqual({ host: '0.0.0.0', port: 9180 });
    expect(problems({ daemon: { listen: 'localhost' }, targets: {} })[0]).toMatch(/^daemon\.listen: "localhost" is not host:port/);
  });
});
