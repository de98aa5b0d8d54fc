import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipientCheck } from '../../src/config/encryption.js';
import { resolveConfig } from '../../src/config/load.js';
import { collectSecrets, isPublicValue, maskUrl, redact } from '../../src/config/secrets.js';
import { ConfigError } from '../../src/core/errors.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';

const drivers = createDriverRegistry();
const checkRecipient = await loadRecipientCheck();
const load = (raw: unknown, env: NodeJS.ProcessEnv = {}) => resolveConfig(raw, '/etc/bk/backupkit.config.json', { env, drivers, checkRecipient });
const problems = (raw: unknown, env: NodeJS.ProcessEnv = {}) => {
  try {
    load(raw, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('config', () => {
  it('resolves paths against the config file and applies defaults', () => {
    const config = load({
      storage: { path: './store' },
      defaults: { timeout: '5m', compression: { level: 9 }, retention: { keepLast: 3 } },
      targets: { demo: { driver: 'sqlite', path: 'db/demo.sqlite', files: ['uploads', '/abs/media'], timeout: 30 } },
    });
    expect(config.storages).toEqual([{ name: 'local', type: 'local', path: '/etc/bk/store', retention: undefined }]);
    expect(config.stateDir).toBe('/etc/bk/store');
    const demo = config.targets.get('demo')!;
    expect(demo.options.path).toBe('/etc/bk/db/demo.sqlite');
    expect(demo.files).toEqual(['/etc/bk/uploads', '/abs/media']);
    expect(demo.timeoutMs).toBe(30_000);
    expect(demo.compressionLevel).toBe(9);
    expect(demo.retention).toEqual({ keepLast: 3 });
  });

  it('defaults storage to ./backups beside the config', () => {
    expect(load({ targets: {} }).storages.map((st) => st.type === 'local' && st.path)).toEqual([path.resolve('/etc/bk/backups')]);
  });

  it('reports every problem at once, each with its key path', () => {
    expect(
      problems({
        storage: { pth: 'x' },
        targets: {
          a: { driver: 'sqlite', path: 1 },
          b: { driver: 'pg_dump', url: 'postgres://h/db', tabels: ['x'] },
          c: { driver: 'pg_dump' },
        },
      }),
    ).toEqual([
      'storage.pth: unknown key (did you mean "path"?)',
      'targets.a.path: expected string, received number',
      'targets.b.tabels: unknown key (did you mean "tables"?)',
      'targets.c.url: set "url", or "database" (with host, port, user, password as needed)',
    ]);
  });

  it('suggests keys inside a storage by its type, and lists that type\'s keys when nothing is close', () => {
    expect(
      problems({
        storages: {
          local: { type: 'local', pth: './b' },
          offsite: { type: 's3', bucket: 'backups', regoin: 'eu-west-1' },
          other: { type: 's3', bucket: 'backups', path: './x' },
        },
        targets: {},
      }),
    ).toEqual([
      'storages.local.path: required string is missing',
      'storages.local.pth: unknown key (did you mean "path"?)',
      'storages.offsite.regoin: unknown key (did you mean "region"?)',
      expect.stringMatching(/^storages\.other\.path: unknown key; expected one of: type, bucket, .*region/),
    ]);
  });

  it('fills environment references, with defaults', () => {
    const config = load({ targets: { crm: { driver: 'pg_dump', url: 'postgres://${PGU:-app}:${PGP}@db/crm', database: '${DB:-crm}' } } }, { PGP: 'pw' });
    expect(config.targets.get('crm')!.options).toMatchObject({ url: 'postgres://app:pw@db/crm', database: 'crm' });
    expect(config.secrets.has('pw')).toBe(true);
  });
});

describe('secrets', () => {
  it('masks URL passwords and collects the secrets at their schema positions', () => {
    expect(maskUrl('postgres://app:s3cret@db:5432/crm and mongodb://u:p%40ss@h/x')).toBe('postgres://app:***@db:5432/crm and mongodb://u:***@h/x');
    const secrets = collectSecrets({ targets: { a: { password: 'hunter22' }, b: { url: 'postgres://u:p%40ss@h/x' }, c: { name: 'public' } } });
    expect([...secrets].sort()).toEqual(['hunter22', 'p%40ss', 'p@ss']);
    expect(redact('auth failed for hunter22 with p@ss', secrets)).toBe('auth failed for *** with ***');
  });

  it('takes every value filled from the environment for a secret, unless short, a path or a bare origin', () => {
    const env = {
      PGPASSWORD_X: 'Pg-Secret-5501',
      PASSPHRASE: 'correct horse battery staple',
      SMTP_URL: 'smtp://ops:SmtpPw-9911@smtp.example.com:587',
      HOOK: 'https://hooks.example.com/services/T0K3N-web-8812',
      DB_NAME: 'crm_production',
      PGUSER: 'app',
      HOME: '/home/alice',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
    };
    const config = load(
      {
        storages: { local: { type: 'local', path: '${HOME}/backups' }, off: { type: 's3', bucket: 'acme', endpoint: '${S3_ENDPOINT}', accessKeyId: 'AKIAEXAMPLE01', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG' } },
        defaults: {
          encryption: { passphrase: '${PASSPHRASE}' },
          notify: {
            email: { url: '${SMTP_URL}', from: 'backupkit@example.com', to: 'ops@example.com' },
            webhook: { url: '${HOOK}' },
            ping: { url: 'https://hc-ping.example.com/2f1c0b5e-ping' },
          },
        },
        targets: {
          crm: { driver: 'pg_dump', host: 'db', user: '${PGUSER}', password: '${PGPASSWORD_X}', database: '${DB_NAME}' },
          erp: { driver: 'mysqldump', url: '${MYSQL_URL:-mysql://root@localhost:3306/erp-from-default}' },
        },
      },
      env,
    );
    const secrets = config.secrets;
    for (const secret of ['Pg-Secret-5501', 'correct horse battery staple', 'SmtpPw-9911', env.SMTP_URL, env.HOOK, 'https://hc-ping.example.com/2f1c0b5e-ping', 'crm_production', 'AKIAEXAMPLE01', 'wJalrXUtnFEMI/K7MDENG']) {
      expect(secrets, secret).toContain(secret);
    }
    // Obviously not secret: short, a path, an origin; a default is written in the file.
    for (const value of ['app', '/home/alice', 'http://127.0.0.1:9000', 'mysql://root@localhost:3306/erp-from-default']) expect(secrets, value).not.toContain(value);
    expect(isPublicValue('./shop/media')).toBe(true);
    expect(isPublicValue('C:\\backups')).toBe(true);
    expect(isPublicValue('/x!K9$m#Qz')).toBe(false);
    expect(isPublicValue('mongodb://u:pw@h:27017')).toBe(false);
  });

  it('scrubs a problem that quotes a value before the config is valid', () => {
    const found = problems({ daemon: { listen: '${LISTEN_TOKEN}' }, targets: {} }, { LISTEN_TOKEN: 'tok3n-listen-4471' });
    expect(found).toEqual(['daemon.listen: "***" is not host:port; e.g. "127.0.0.1:9180"']);
  });

  it('replaces a secret where it stands on its own, and masks age identities by their shape', () => {
    const secrets = new Set(['postgres', 'https://hooks.example.com/T0K3N']);
    expect(redact('apt-get install postgresql-client; user "postgres" at https://hooks.example.com/T0K3N failed', secrets)).toBe(
      'apt-get install postgresql-client; user "***" at *** failed',
    );
    expect(redact('bad key AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS9', new Set())).toBe('bad key AGE-SECRET-KEY-1***');
    // A whole URL that is a secret goes before its password is masked.
    expect(redact('POST https://u:pw12@hooks.example.com/T0K3N', new Set(['https://u:pw12@hooks.example.com/T0K3N']))).toBe('POST ***');
  });
});
