import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/app/deps.js';
import { configuredChannels } from '../../src/app/notifytest.js';
import { resolveConfig } from '../../src/config/load.js';
import { collectSecrets, redact } from '../../src/config/secrets.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { notifyFor } from '../../src/notify/index.js';
import { describeRun, emailMessage, maskChannelUrl, pingBody, testMessage, wants, webhookPayload } from '../../src/notify/message.js';
import { pingUrl } from '../../src/notify/ping.js';
import { SendError, withRetries } from '../../src/notify/retry.js';

const TAIL = 'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host?';
const failed: RunReport = {
  command: 'backup',
  target: 'crm',
  id: 'crm_20261121_020000',
  started: new Date('2026-11-21T02:00:00.000Z'),
  ok: false,
  durationMs: 1834,
  error: `pg_dump --dbname=postgres://app:hunter22@db/crm exited with code 1:\n${TAIL.split('\n').map((l) => `  ${l}`).join('\n')}`,
  code: 1,
  stderrTail: TAIL,
  size: null,
};
const ok: RunReport = { ...failed, ok: true, error: null, code: 0, stderrTail: null, size: 1234 };
const ctx = { host: 'db1', scrub: (text: string) => redact(text, new Set(['hunter22'])) };

describe('notification messages', () => {
  it('names host, command, target and outcome in the subject', () => {
    expect(emailMessage(failed, ctx).subject).toBe('[backupkit] db1: backup of crm failed');
    expect(emailMessage(ok, ctx).subject).toBe('[backupkit] db1: backup of crm ok');
    expect(describeRun({ command: 'verify', target: null, ok: false })).toBe('verify failed');
  });

  it("puts the error, the tool's stderr tail and the run's facts in the body, secrets masked", () => {
    const { text } = emailMessage(failed, ctx);
    expect(text).toBe(
      [
        'backup of crm failed on db1.',
        '',
        'Error:',
        '  pg_dump --dbname=postgres://app:***@db/crm exited with code 1',
        '',
        "The tool's stderr (last lines):",
        '  pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused',
        '  \tIs the server running on that host?',
        '',
        'Command:  backup',
        'Target:   crm',
        'Backup:   crm_20261121_020000',
        'Outcome:  failed (exit code 1)',
        'Started:  2026-11-21T02:00:00.000Z',
        'Duration: 1.8s',
        'Host:     db1',
        '',
      ].join('\n'),
    );
    expect(emailMessage(ok, ctx).text).not.toContain('Error:');
  });

  it('keeps an error that does not end in the stderr tail whole', () => {
    const text = emailMessage({ ...failed, error: 'storage offsite failed: access denied' }, ctx).text;
    expect(text).toContain('Error:\n  storage offsite failed: access denied\n');
    expect(text).toContain("The tool's stderr (last lines):\n  pg_dump: error");
  });

  it('builds the webhook JSON of the contract', () => {
    const payload = webhookPayload(failed, ctx);
    expect(Object.keys(payload).sort()).toEqual(['durationMs', 'error', 'event', 'host', 'id', 'ok', 'target', 'time']);
    expect(payload).toMatchObject({ event: 'backup', ok: false, target: 'crm', id: 'crm_20261121_020000', durationMs: 1834, host: 'db1', time: '2026-11-21T02:00:00.000Z' });
    expect(payload.error).toContain('postgres://app:***@db/crm exited with code 1');
    expect(payload.error).not.toContain('hunter22');
    expect(webhookPayload(ok, ctx).error).toBeNull();
  });

  it('gives pings a one-line summary, with the error on a failure', () => {
    expect(pingBody(ok, ctx)).toBe('backup of crm ok on db1 (crm_20261121_020000) in 1.8s');
    const body = pingBody(failed, ctx);
    expect(body.split('\n')[0]).toBe('backup of crm failed on db1 (crm_20261121_020000) in 1.8s');
    expect(body).toContain('Connection refused');
    expect(body).not.toContain('hunter22');
  });

  it('joins ping suffixes to the path, before a query', () => {
    expect(pingUrl('https://hc-ping.com/abc', 'start')).toBe('https://hc-ping.com/abc/start');
    expect(pingUrl('https://hc-ping.com/abc/', 'fail')).toBe('https://hc-ping.com/abc/fail');
    expect(pingUrl('https://hc.example.com/ping/key/slug?create=1', 'log')).toBe('https://hc.example.com/ping/key/slug/log?create=1');
    expect(pingUrl('https://hc-ping.com/abc', 'success')).toBe('https://hc-ping.com/abc');
  });

  it('masks channel URLs: the SMTP password, a webhook or ping path and query', () => {
    expect(maskChannelUrl('smtp://user:s3cret@smtp.example.com:587')).toBe('smtp://user:***@smtp.example.com:587');
    expect(maskChannelUrl('smtps://smtp.example.com:465')).toBe('smtps://smtp.example.com:465');
    expect(maskChannelUrl('https://hooks.slack.com/services/T0/B0/XYZ')).toBe('https://hooks.slack.com/***');
    expect(maskChannelUrl('https://hooks.example.com/?token=abc')).toBe('https://hooks.example.com/***');
    expect(maskChannelUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
  });

  it('a test message in each shape', () => {
    const message = testMessage('db1', new Date('2026-12-01T10:00:00Z'));
    expect(message.email.subject).toBe('[backupkit] db1: test notification');
    expect(message.webhook).toEqual({ event: 'test', ok: true, target: null, id: null, error: null, durationMs: 0, host: 'db1', time: '2026-12-01T10:00:00.000Z' });
    expect(message.ping).toContain('backupkit notify test');
  });
});

const drivers = createDriverRegistry();
const load = (raw: unknown) => resolveConfig(raw, '/etc/bk/backupkit.config.json', { env: {}, drivers });
const demo = (extra: Record<string, unknown> = {}) => ({ driver: 'sqlite', path: 'demo.sqlite', ...extra });

describe('notify config', () => {
  const raw = {
    defaults: {
      notify: {
        email: { url: 'smtp://mailer:p%40ss-word@smtp.example.com:587', from: 'bk@example.com', to: 'ops@example.com' },
        ping: { url: 'https://hc-ping.com/2f1c0b5e-defaults' },
      },
    },
    targets: {
      a: demo(),
      b: demo({ notify: { on: 'always', webhook: { url: 'https://hooks.example.com/T0/B0/tok3n' }, ping: { url: 'https://hc-ping.com/2f1c0b5e-b' } } }),
      c: demo({ notify: { webhook: { url: 'https://hooks.example.com/' } } }),
      d: demo({ url: 'https://docs.example.com/not-a-secret' }),
    },
  };

  it('holds the webhook and ping URLs whole and the SMTP password as secrets, found by where they sit', () => {
    const secrets = collectSecrets({ ...raw, targets: { ...raw.targets, d: { driver: 'x', url: 'https://docs.example.com/not-a-secret' } } });
    expect(secrets).toContain('https://hooks.example.com/T0/B0/tok3n');
    expect(secrets).toContain('https://hc-ping.com/2f1c0b5e-defaults');
    expect(secrets).toContain('https://hc-ping.com/2f1c0b5e-b');
    expect(secrets).toContain('p@ss-word');
    expect(secrets).toContain('p%40ss-word');
    // Not in a notify block, or nothing beyond a host: not held whole.
    expect(secrets).not.toContain('https://docs.example.com/not-a-secret');
    expect(secrets).not.toContain('https://hooks.example.com/');
    expect(redact('POST https://hooks.example.com/T0/B0/tok3n failed; ping https://hc-ping.com/2f1c0b5e-b/fail', secrets)).toBe('POST *** failed; ping ***/fail');
  });

  it("reports a run through its target's notify, else the defaults'", () => {
    const config = load({ ...raw, targets: { a: raw.targets.a, b: raw.targets.b } });
    expect(notifyFor(config, 'a')?.at).toBe('defaults.notify');
    expect(notifyFor(config, 'b')?.at).toBe('targets.b.notify');
    expect(notifyFor(config, null)?.at).toBe('defaults.notify');
    expect(notifyFor(config, 'from-another-host')?.at).toBe('defaults.notify');
    expect(wants(notifyFor(config, 'a')!, true)).toBe(false);
    expect(wants(notifyFor(config, 'a')!, false)).toBe(true);
    expect(wants(notifyFor(config, 'b')!, true)).toBe(true);
  });

  it('lists each distinct channel once for notify test, defaults first', () => {
    const config = load({
      ...raw,
      targets: { a: raw.targets.a, b: raw.targets.b, e: demo({ notify: { webhook: { url: 'https://hooks.example.com/T0/B0/tok3n' } } }) },
    });
    expect(configuredChannels({ config }, []).map((c) => [c.kind, c.at])).toEqual([
      ['email', 'defaults.notify'],
      ['ping', 'defaults.notify'],
      ['webhook', 'targets.b.notify'],
      ['ping', 'targets.b.notify'],
    ]);
    expect(configuredChannels({ config }, ['a']).map((c) => c.kind)).toEqual(['email', 'ping']);
  });
});

describe('retries', () => {
  const policy = { tries: 3, backoffMs: [0], timeoutMs: 1000, deadlineMs: 10_000 };

  it('tries again after a retryable failure, up to the number of tries', async () => {
    let calls = 0;
    await withRetries(async () => {
      calls++;
      if (calls < 3) throw new SendError('the server answered 503', true);
    }, policy);
    expect(calls).toBe(3);

    calls = 0;
    const error = await withRetries(async () => {
      calls++;
      throw new SendError('connect ECONNREFUSED 127.0.0.1:9', true);
    }, policy).catch((e: Error) => e);
    expect(calls).toBe(3);
    expect((error as Error).message).toBe('connect ECONNREFUSED 127.0.0.1:9 (after 3 attempts)');
  });

  it('stops at a failure that another attempt would not mend', async () => {
    let calls = 0;
    const error = await withRetries(async () => {
      calls++;
      throw new SendError('the server answered 404 Not Found', false);
    }, policy).catch((e: Error) => e);
    expect(calls).toBe(1);
    expect((error as Error).message).toBe('the server answered 404 Not Found');
  });
});
