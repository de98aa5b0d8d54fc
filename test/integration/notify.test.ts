/**
 * The notifier against real receivers: an SMTP server with AUTH and an HTTP server for the webhook
 * and the pings, both on loopback. Runs are reported as the app reports them (RunReport).
 */
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/app/deps.js';
import { resolveConfig } from '../../src/config/load.js';
import type { Logger } from '../../src/core/driver.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { createNotifier } from '../../src/notify/index.js';
import type { RetryPolicy } from '../../src/notify/retry.js';
import { freePort } from '../support/ports.js';
import { startHttp, startSmtp } from '../support/notify.js';

const SMTP_PASS = 'smtp-pa55:word';
const TOKEN = '7d3c1f0e-token';
const policy: RetryPolicy = { tries: 3, backoffMs: [10], timeoutMs: 5000, deadlineMs: 60_000 };

function capture(): Logger & { warnings: string[]; lines: string[] } {
  const warnings: string[] = [];
  const lines: string[] = [];
  const text = (a: object | string, b?: string) => (typeof a === 'string' ? a : `${JSON.stringify(a)} ${b ?? ''}`);
  return {
    warnings,
    lines,
    debug: (a, b) => void lines.push(text(a, b)),
    info: (a, b) => void lines.push(text(a, b)),
    warn: (a, b) => {
      lines.push(text(a, b));
      warnings.push(typeof a === 'string' ? a : (b ?? ''));
    },
    error: (a, b) => void lines.push(text(a, b)),
  };
}

function notifier(notify: Record<string, unknown>, options: { policy?: RetryPolicy } = {}) {
  const config = resolveConfig(
    { defaults: { notify }, targets: { crm: { driver: 'sqlite', path: 'crm.sqlite' } } },
    '/srv/bk/backupkit.config.json',
    { env: {}, drivers: createDriverRegistry() },
  );
  const log = capture();
  return { log, listener: createNotifier(config, { log, host: 'db1', version: '1.2.3', policy: options.policy ?? policy }), secrets: config.secrets };
}

const TAIL = 'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused';
const failed: RunReport = {
  command: 'backup',
  target: 'crm',
  id: 'crm_20261121_020000',
  started: new Date('2026-11-21T02:00:00.000Z'),
  ok: false,
  durationMs: 1834,
  error: `pg_dump --format=custom exited with code 1:\n  ${TAIL}`,
  code: 1,
  stderrTail: TAIL,
  size: null,
};
const succeeded: RunReport = { ...failed, ok: true, error: null, code: 0, stderrTail: null, size: 4096 };

describe('email', () => {
  it('logs in and sends the failure with its error and stderr tail', async () => {
    const smtp = await startSmtp('mailer', SMTP_PASS);
    const { listener, log } = notifier({ email: { url: smtp.url, from: 'backupkit@example.com', to: ['ops@example.com', 'dba@example.com'] } });
    await listener.runFinished!(failed);
    expect(log.warnings).toEqual([]);
    expect(smtp.logins).toEqual([{ user: 'mailer', ok: true }]);
    expect(smtp.messages).toHaveLength(1);
    const mail = smtp.messages[0]!;
    expect(mail.from).toBe('backupkit@example.com');
    expect(mail.to).toEqual(['ops@example.com', 'dba@example.com']);
    expect(mail.subject).toBe('[backupkit] db1: backup of crm failed');
    expect(mail.text).toContain('Error:\n  pg_dump --format=custom exited with code 1\n');
    expect(mail.text).toContain(`The tool's stderr (last lines):\n  ${TAIL}\n`);
    expect(mail.text).toContain('Backup:   crm_20261121_020000');
    expect(mail.text).toContain('Host:     db1');
    expect(mail.raw).not.toContain(SMTP_PASS);
  });

  it('gives up at once on a refused login, with a warning that shows no password', async () => {
    const smtp = await startSmtp('mailer', 'the-right-one');
    const url = smtp.url.replace(encodeURIComponent('the-right-one'), encodeURIComponent(SMTP_PASS));
    const { listener, log } = notifier({ email: { url, from: 'backupkit@example.com', to: 'ops@example.com' } });
    await listener.runFinished!(failed);
    expect(smtp.logins).toEqual([{ user: 'mailer', ok: false }]);
    expect(smtp.messages).toEqual([]);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(`notify: email smtp://mailer:***@127.0.0.1:${smtp.port} (defaults.notify): could not send the report of backup of crm: `);
    expect(log.warnings[0]).toMatch(/Invalid login/);
    expect(log.lines.join('\n')).not.toContain(SMTP_PASS.split(':')[0]);
  });
});

describe('webhook', () => {
  it('posts the run as JSON, trying again after a 503', async () => {
    const hook = await startHttp();
    hook.respond((_, index) => (index === 0 ? 503 : 200));
    const { listener, log } = notifier({ webhook: { url: `${hook.base}/hooks/${TOKEN}` } });
    await listener.runFinished!(failed);
    expect(log.warnings).toEqual([]);
    expect(hook.requests.map((r) => [r.method, r.path])).toEqual([
      ['POST', `/hooks/${TOKEN}`],
      ['POST', `/hooks/${TOKEN}`],
    ]);
    expect(hook.requests[1]!.headers['content-type']).toBe('application/json');
    expect(hook.requests[1]!.headers['user-agent']).toBe('backupkit/1.2.3');
    expect(hook.requests[1]!.json()).toEqual({
      event: 'backup',
      ok: false,
      target: 'crm',
      id: 'crm_20261121_020000',
      error: failed.error,
      durationMs: 1834,
      host: 'db1',
      time: '2026-11-21T02:00:00.000Z',
    });
  });

  it('does not try again after a 4xx, and warns with the URL masked', async () => {
    const hook = await startHttp();
    hook.respond(() => 404);
    const { listener, log, secrets } = notifier({ webhook: { url: `${hook.base}/hooks/${TOKEN}` } });
    await listener.runFinished!(failed);
    expect(hook.requests).toHaveLength(1);
    expect(log.warnings).toEqual([`notify: webhook ${hook.base}/*** (defaults.notify): could not send the report of backup of crm: the server answered 404 Not Found`]);
    expect(secrets).toContain(`${hook.base}/hooks/${TOKEN}`);
  });

  it('warns when nothing listens, after its tries', async () => {
    const port = await freePort();
    const { listener, log } = notifier({ webhook: { url: `http://127.0.0.1:${port}/hooks/${TOKEN}` } });
    await listener.runFinished!(failed);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(`notify: webhook http://127.0.0.1:${port}/*** (defaults.notify)`);
    expect(log.warnings[0]).toContain(`ECONNREFUSED`);
    expect(log.warnings[0]).toContain('(after 3 attempts)');
    expect(log.warnings[0]).not.toContain(TOKEN);
  });

  it('gives up on a server that never answers', async () => {
    const hook = await startHttp();
    hook.respond(() => 'hang');
    const { listener, log } = notifier({ webhook: { url: `${hook.base}/hooks/${TOKEN}` } }, { policy: { tries: 2, backoffMs: [10], timeoutMs: 300, deadlineMs: 60_000 } });
    await listener.runFinished!(failed);
    expect(hook.requests).toHaveLength(2);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(/: no answer within 300ms \(after 2 attempts\)$/);
  });
});

describe('pings and "on"', () => {
  it('pings /start, then the URL on success and /fail on failure, whatever "on" says', async () => {
    const hc = await startHttp();
    const { listener, log } = notifier({ ping: { url: `${hc.base}/${TOKEN}` } });
    await listener.runStarted!({ command: 'backup', target: 'crm', started: failed.started });
    await listener.runFinished!(succeeded);
    await listener.runStarted!({ command: 'backup', target: 'crm', started: failed.started });
    await listener.runFinished!(failed);
    expect(log.warnings).toEqual([]);
    expect(hc.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /${TOKEN}/start`, `POST /${TOKEN}`, `POST /${TOKEN}/start`, `POST /${TOKEN}/fail`]);
    expect(hc.requests[1]!.body).toBe('backup of crm ok on db1 (crm_20261121_020000) in 1.8s');
    expect(hc.requests[3]!.body).toContain('backup of crm failed on db1');
    expect(hc.requests[3]!.body).toContain('Connection refused');
  });

  it('sends email and webhook on failure by default, on success with "success", on both with "always"', async () => {
    const smtp = await startSmtp('mailer', SMTP_PASS);
    const hook = await startHttp();
    const channels = { email: { url: smtp.url, from: 'bk@example.com', to: 'ops@example.com' }, webhook: { url: `${hook.base}/h/${TOKEN}` } };
    const sent = async (on: unknown) => {
      const before = [smtp.messages.length, hook.requests.length];
      const { listener } = notifier(on === undefined ? channels : { on, ...channels });
      const outcomes: string[] = [];
      for (const report of [succeeded, failed]) {
        await listener.runFinished!(report);
        const mails = smtp.messages.slice(before[0]).map((m) => m.subject.split(': ')[1]);
        const hooks = hook.requests.slice(before[1]).map((r) => (r.json().ok ? 'ok' : 'failed'));
        outcomes.push(`${report.ok ? 'ok' : 'failed'}: mail [${mails.join(', ')}] hook [${hooks.join(', ')}]`);
        before[0] = smtp.messages.length;
        before[1] = hook.requests.length;
      }
      return outcomes;
    };
    expect(await sent(undefined)).toEqual(['ok: mail [] hook []', 'failed: mail [backup of crm failed] hook [failed]']);
    expect(await sent(['success'])).toEqual(['ok: mail [backup of crm ok] hook [ok]', 'failed: mail [] hook []']);
    expect(await sent('always')).toEqual(['ok: mail [backup of crm ok] hook [ok]', 'failed: mail [backup of crm failed] hook [failed]']);
  });
});
