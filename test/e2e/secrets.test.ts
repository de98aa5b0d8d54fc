/**
 * Secrets never reach stdout, stderr or history.jsonl (contract: "Secrets never reach ... a log
 * line ... or an error message"), whatever a failing run prints with --verbose or --json: a
 * password filled from the environment, a passphrase, an SMTP URL's password, a webhook's and a
 * ping's URL, and values from the environment that a tool or an error message echoes back.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { freePort } from '../support/ports.js';
import { makeSqlite } from '../support/sqlitedb.js';

const SECRETS = {
  password: 'Pg-Secret-5501',
  passphrase: 'Horse-Battery-Staple-42',
  smtpPassword: 'SmtpPw-9911',
  webhookToken: 'T0K3N-web-8812',
  pingToken: '2f1c0b5e-ping-7731',
  database: 'crm_prod_4a7f',
  folder: 'media-4f9a2c',
};

async function setup() {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'), 5);
  // A pg_dump that fails and, as some tools do, echoes what it was given: its password and database.
  writeFileSync(
    path.join(dir, 'pg_dump'),
    '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 16.4"; exit 0; fi\necho "pg_dump: error: cannot connect with password $PGPASSWORD to $*" >&2\nexit 1\n',
    { mode: 0o755 },
  );
  const config = writeConfig(dir, {
    storage: { path: './store' },
    defaults: {
      notify: {
        on: 'always',
        email: { url: `smtp://ops:${SECRETS.smtpPassword}@127.0.0.1:${await freePort()}`, from: 'backupkit@example.com', to: 'ops@example.com' },
        webhook: { url: `https://hooks.example.com/services/${SECRETS.webhookToken}` },
        ping: { url: `https://hc-ping.example.com/${SECRETS.pingToken}` },
      },
    },
    targets: {
      crm: { driver: 'pg_dump', host: '127.0.0.1', port: await freePort(), user: 'app', password: '${PGPASSWORD_X}', database: '${PGDATABASE_X}', bin: '.' },
      app: { driver: 'sqlite', path: './app.sqlite', encryption: { passphrase: SECRETS.passphrase } },
      // A files entry that does not exist: its error names the path.
      media: { driver: 'sqlite', path: './app.sqlite', files: ['./${MEDIA_X}'] },
    },
  });
  const env = { PGPASSWORD_X: SECRETS.password, PGDATABASE_X: SECRETS.database, MEDIA_X: SECRETS.folder };
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir, env });
  return { dir, cli };
}

describe('secrets', () => {
  it('never appear in stdout, stderr or history of a failing run, with --verbose or --json', async () => {
    const { dir, cli } = await setup();
    const runs = [
      await cli('--verbose', 'backup'), // app's backup encrypts with the passphrase (age's scrypt: a few seconds)
      await cli('--verbose', '--log-format', 'pretty', 'backup', 'crm'),
      await cli('--json', 'backup', 'crm'),
      await cli('--json', '--verbose', 'backup', 'crm'),
      await cli('--verbose', 'restore', 'crm', '--yes'),
    ];
    expect(runs.map((r) => r.code)).toEqual([1, 1, 1, 1, 2]);
    // The failure is there to be read, its secrets masked.
    expect(runs[2]!.json().failures[0].error).toContain('cannot connect with password *** to');
    const history = readFileSync(path.join(dir, 'store', 'history.jsonl'), 'utf8');
    expect(history).toContain('cannot connect with password ***');
    expect(history).toMatch(/"target":"media".*\/\*\*\*/);
    const printed = [...runs.flatMap((r) => [r.stdout, r.stderr]), history].join('\n');
    for (const [what, secret] of Object.entries(SECRETS)) expect(printed, what).not.toContain(secret);
  });
});
