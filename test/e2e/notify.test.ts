/**
 * Notifications through the built CLI, as a crontab line would run it: a failing pg_dump and a
 * good sqlite backup report to a local SMTP server (with AUTH) and a local HTTP server (webhook,
 * pings); channels that are down; `notify test`. Secrets stay out of every output and history.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { type HttpReceiver, type SmtpReceiver, startHttp, startSmtp } from '../support/notify.js';
import { pgInfo } from '../support/pgdb.js';
import { freePort } from '../support/ports.js';
import { makeSqlite } from '../support/sqlitedb.js';

const SMTP_PASSWORD = 'Sm7p-s3cret-pw';
const HOOK_TOKEN = 'T024BE7LD-B0Z9-hooktoken';
const PING_TOKEN = '2f1c0b5e-pingtoken';
const DB_PASSWORD = 'db-pa55word';

interface Servers {
  smtp: SmtpReceiver;
  http: HttpReceiver;
}

async function servers(): Promise<Servers> {
  return { smtp: await startSmtp('mailer', SMTP_PASSWORD), http: await startHttp() };
}

/** A notify block for the servers; the password and the webhook URL come from the environment. */
function notifyBlock(s: Servers, extra: Record<string, unknown> = {}) {
  return {
    email: { url: `smtp://mailer:\${SMTP_PASSWORD}@127.0.0.1:${s.smtp.port}`, from: 'backupkit@example.com', to: ['ops@example.com'] },
    webhook: { url: '${HOOK_URL}' },
    ping: { url: `${s.http.base}/ping/${PING_TOKEN}` },
    ...extra,
  };
}

async function setup(config: (dir: string, closedPort: number) => Record<string, unknown>, s?: Servers) {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'));
  const closedPort = await freePort();
  const file = writeConfig(dir, { storage: { path: './store' }, ...config(dir, closedPort) });
  const env = { SMTP_PASSWORD, HOOK_URL: s ? `${s.http.base}/hooks/${HOOK_TOKEN}` : 'http://127.0.0.1:9/none' };
  const cli = (...args: string[]) => runCli(['-c', file, ...args], { cwd: dir, env });
  const history = () => readFileSync(path.join(dir, 'store', 'history.jsonl'), 'utf8');
  return { dir, cli, history, closedPort };
}

const pgTarget = (closedPort: number) => ({ driver: 'pg_dump', url: `postgres://app:${DB_PASSWORD}@127.0.0.1:${closedPort}/crm`, bin: pgInfo().binDir });

function expectNoSecrets(...texts: string[]) {
  for (const text of texts) {
    for (const secret of [SMTP_PASSWORD, HOOK_TOKEN, PING_TOKEN, DB_PASSWORD]) expect(text).not.toContain(secret);
  }
}

describe('notifications after runs', () => {
  it('a failed backup sends email, webhook and a fail ping, and exits 1 as it would without them', async () => {
    const s = await servers();
    const { cli, history } = await setup((_, closedPort) => ({ defaults: { notify: notifyBlock(s) }, targets: { crm: pgTarget(closedPort) } }), s);
    const run = await cli('backup', 'crm');
    expect(run.code, run.stderr).toBe(1);

    expect(s.smtp.logins).toEqual([{ user: 'mailer', ok: true }]);
    expect(s.smtp.messages).toHaveLength(1);
    const mail = s.smtp.messages[0]!;
    expect([mail.from, mail.to]).toEqual(['backupkit@example.com', ['ops@example.com']]);
    expect(mail.subject).toMatch(/^\[backupkit\] .+: backup of crm failed$/);
    expect(mail.text).toMatch(/^Error:\n {2}pg_dump .* exited with code 1\n/m);
    expect(mail.text).toMatch(/The tool's stderr \(last lines\):\n {2}pg_dump: error: .*Connection refused/);
    expect(mail.text).toMatch(/^Backup: {3}crm_\d{8}_\d{6}$/m);

    const hook = s.http.requests.filter((r) => r.path.startsWith('/hooks/'));
    expect(hook.map((r) => r.path)).toEqual([`/hooks/${HOOK_TOKEN}`]);
    const payload = hook[0]!.json();
    expect(Object.keys(payload).sort()).toEqual(['durationMs', 'error', 'event', 'host', 'id', 'ok', 'target', 'time']);
    expect(payload).toMatchObject({ event: 'backup', ok: false, target: 'crm' });
    expect(payload.error).toMatch(/exited with code 1:\n.*Connection refused/);
    const line = JSON.parse(history().trim());
    expect([payload.id, payload.time, payload.durationMs]).toEqual([line.id, line.time, line.durationMs]);

    const pings = s.http.requests.filter((r) => r.path.startsWith('/ping/'));
    expect(pings.map((r) => r.path)).toEqual([`/ping/${PING_TOKEN}/start`, `/ping/${PING_TOKEN}/fail`]);
    expect(pings[1]!.body).toContain('Connection refused');

    expectNoSecrets(run.stdout, run.stderr, history(), mail.raw, hook[0]!.body, pings[1]!.body);
  });

  it("reports each target through its own notify, else the defaults'; pings go on success too", async () => {
    const s = await servers();
    const own = await startHttp();
    const { cli } = await setup(
      (dir) => ({
        defaults: { notify: notifyBlock(s) },
        targets: {
          app: { driver: 'sqlite', path: './app.sqlite', notify: { on: ['success'], webhook: { url: `${own.base}/app-hook` }, ping: { url: `${own.base}/app-ping` } } },
          lost: { driver: 'sqlite', path: path.join(dir, 'missing.sqlite') },
        },
      }),
      s,
    );
    const run = await cli('--json', 'backup');
    expect(run.code, run.stderr).toBe(1);
    expect(run.json().failures.map((f: { target: string }) => f.target)).toEqual(['lost']);

    // app: on success, its own webhook and ping; nothing of it reaches the defaults' channels.
    expect(own.requests.map((r) => r.path)).toEqual(['/app-ping/start', '/app-hook', '/app-ping']);
    expect(own.requests[1]!.json()).toMatchObject({ event: 'backup', ok: true, target: 'app', error: null });
    // lost: the defaults' channels, on failure.
    expect(s.smtp.messages.map((m) => m.subject.replace(/^\[backupkit\] .+?: /, ''))).toEqual(['backup of lost failed']);
    expect(s.smtp.messages[0]!.text).toContain('missing.sqlite does not exist');
    expect(s.http.requests.map((r) => r.path.replace(HOOK_TOKEN, '<token>').replace(PING_TOKEN, '<token>'))).toEqual([
      '/ping/<token>/start',
      '/hooks/<token>',
      '/ping/<token>/fail',
    ]);
    expectNoSecrets(run.stdout, run.stderr);
  });

  it('a channel that is down is a warning naming it, and the run keeps its own exit code', async () => {
    const { cli, history } = await setup((_, closedPort) => ({
      defaults: {
        notify: {
          on: 'always',
          email: { url: `smtp://mailer:\${SMTP_PASSWORD}@127.0.0.1:${closedPort}`, from: 'bk@example.com', to: 'ops@example.com' },
          webhook: { url: `http://127.0.0.1:${closedPort}/hooks/${HOOK_TOKEN}` },
          ping: { url: `http://127.0.0.1:${closedPort}/ping/${PING_TOKEN}` },
        },
      },
      targets: { app: { driver: 'sqlite', path: './app.sqlite' }, crm: pgTarget(closedPort) },
    }));
    const good = await cli('--json', 'backup', 'app');
    expect(good.code, good.stderr).toBe(0);
    expect(good.json().backups).toHaveLength(1);
    const warnings = good.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level === 40)
      .map((l) => l.msg);
    const port = /127\.0\.0\.1:(\d+)/.exec(warnings.join(' '))?.[1];
    expect(warnings.sort()).toEqual(
      [
        `notify: ping http://127.0.0.1:${port}/*** (defaults.notify): could not send the start ping: connect ECONNREFUSED 127.0.0.1:${port} (after 2 attempts)`,
        `notify: ping http://127.0.0.1:${port}/*** (defaults.notify): could not send the success ping: connect ECONNREFUSED 127.0.0.1:${port} (after 3 attempts)`,
        `notify: webhook http://127.0.0.1:${port}/*** (defaults.notify): could not send the report of backup of app: connect ECONNREFUSED 127.0.0.1:${port} (after 3 attempts)`,
        `notify: email smtp://mailer:***@127.0.0.1:${port} (defaults.notify): could not send the report of backup of app: connect ECONNREFUSED 127.0.0.1:${port} (after 3 attempts)`,
      ].sort(),
    );

    const bad = await cli('backup', 'crm');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('notify: webhook http://127.0.0.1:');
    expectNoSecrets(good.stdout, good.stderr, bad.stdout, bad.stderr, history());
  });
});

describe('notify test', () => {
  it('sends a test through every distinct channel and reports each', async () => {
    const s = await servers();
    const { cli } = await setup(
      () => ({
        defaults: { notify: notifyBlock(s) },
        targets: { app: { driver: 'sqlite', path: './app.sqlite' }, other: { driver: 'sqlite', path: './app.sqlite', notify: { webhook: { url: `${s.http.base}/other-hook` } } } },
      }),
      s,
    );
    const run = await cli('--json', 'notify', 'test');
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toEqual({
      results: [
        { channel: 'email', at: 'defaults.notify', ok: true, error: null },
        { channel: 'webhook', at: 'defaults.notify', ok: true, error: null },
        { channel: 'ping', at: 'defaults.notify', ok: true, error: null },
        { channel: 'webhook', at: 'targets.other.notify', ok: true, error: null },
      ],
    });
    expect(s.smtp.messages.map((m) => m.subject)).toEqual([expect.stringMatching(/^\[backupkit\] .+: test notification$/)]);
    const paths = s.http.requests.map((r) => r.path).sort();
    expect(paths).toEqual([`/hooks/${HOOK_TOKEN}`, '/other-hook', `/ping/${PING_TOKEN}/log`].sort());
    expect(s.http.requests.find((r) => r.path === '/other-hook')!.json()).toMatchObject({ event: 'test', ok: true, target: null });

    const text = await cli('notify', 'test', 'app');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^✔ email +defaults\\.notify +smtp://mailer:\\*\\*\\*@127\\.0\\.0\\.1:${s.smtp.port} +sent$`, 'm'));
    expect(text.stdout).toMatch(/^✔ webhook +defaults\.notify +http:\/\/127\.0\.0\.1:\d+\/\*\*\* +sent$/m);
    expect(text.stdout).not.toContain('targets.other.notify');
    expectNoSecrets(run.stdout, run.stderr, text.stdout, text.stderr);
  });

  it('exits 1 when a channel fails, with its error', async () => {
    const s = await servers();
    s.http.respond((r) => (r.path.startsWith('/hooks/') ? 500 : 200));
    const { cli } = await setup(() => ({ defaults: { notify: notifyBlock(s) }, targets: { app: { driver: 'sqlite', path: './app.sqlite' } } }), s);
    const run = await cli('--json', 'notify', 'test');
    expect(run.code).toBe(1);
    expect(run.json().results.map((r: { channel: string; ok: boolean; error: string | null }) => [r.channel, r.ok, r.error])).toEqual([
      ['email', true, null],
      ['webhook', false, 'the server answered 500 Internal Server Error (after 3 attempts)'],
      ['ping', true, null],
    ]);
  });

  it('exits 2 with a notify block to copy when nothing is configured', async () => {
    const { cli } = await setup(() => ({ targets: { app: { driver: 'sqlite', path: './app.sqlite' } } }));
    const run = await cli('notify', 'test');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^backupkit: no notification channel is configured in .*backupkit\.config\.json$/m);
    expect(run.stderr).toContain('"notify": {"on": ["failure"]');
    const json = await cli('--json', 'notify', 'test', 'app');
    expect(json.code).toBe(2);
    expect(json.json().error.message).toMatch(/^no notification channel is configured for app in /);
  });
});
