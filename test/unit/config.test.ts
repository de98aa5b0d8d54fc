import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { collectSecrets, maskUrl, redact } from '../../src/config/secrets.js';
import { ConfigError } from '../../src/core/errors.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';

const drivers = createDriverRegistry();
const load = (raw: unknown, env: NodeJS.ProcessEnv = {}) => resolveConfig(raw, '/etc/bk/backupkit.config.json', { env, drivers });
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

  it('fills environment references, with defaults', () => {
    const config = load({ targets: { crm: { driver: 'pg_dump', url: 'postgres://${PGU:-app}:${PGP}@db/crm', database: '${DB:-crm}' } } }, { PGP: 'pw' });
    expect(config.targets.get('crm')!.options).toMatchObject({ url: 'postgres://app:pw@db/crm', database: 'crm' });
    expect(config.secrets.has('pw')).toBe(true);
  });
});

describe('secrets', () => {
  it('masks URL passwords and collects every secret', () => {
    expect(maskUrl('postgres://app:s3cret@db:5432/crm and mongodb://u:p%40ss@h/x')).toBe('postgres://app:***@db:5432/crm and mongodb://u:***@h/x');
    const secrets = collectSecrets({ a: { password: 'hunter22' }, b: { url: 'postgres://u:p%40ss@h/x' }, c: { name: 'public' } });
    expect([...secrets].sort()).toEqual(['hunter22', 'p%40ss', 'p@ss']);
    expect(redact('auth failed for hunter22 with p@ss', secrets)).toBe('auth failed for *** with ***');
  });
});
