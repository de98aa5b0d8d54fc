import { describe, expect, it } from 'vitest';
import { libpqEnv, libpqString, pgConnection } from '../../src/drivers/postgres/pgconn.js';
import { pgDumpArgs, pgRestoreArgs, psqlRestoreArgs } from '../../src/drivers/postgres/pgdump.js';

const url = 'postgresql://app:p%40ss%20word@db.example:6543/crm?sslmode=require&application_name=x';

describe('pg connection', () => {
  it('parses a URL, decoding the password, keeping other parameters', () => {
    expect(pgConnection({ url })).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'app',
      password: 'p@ss word',
      database: 'crm',
      params: { sslmode: 'require', application_name: 'x' },
    });
  });

  it('lets explicit keys override the URL', () => {
    expect(pgConnection({ url, database: 'other', port: 5432 })).toMatchObject({ database: 'other', port: 5432, host: 'db.example' });
  });

  it('builds a libpq string without the password, quoting values', () => {
    const conn = pgConnection({ host: 'h', user: "o'neil", password: 'secret', database: 'my db' });
    expect(libpqString(conn)).toBe("host='h' user='o\\'neil' dbname='my db'");
    expect(libpqEnv(conn).PGPASSWORD).toBe('secret');
  });
});

describe('pg argv builders', () => {
  const options = { url, tables: ['users', 'sales.Orders'], excludeTables: ['audit'] };

  it.each([
    ['pg_dump custom', pgDumpArgs(options)],
    ['pg_dump plain', pgDumpArgs({ ...options, format: 'plain' })],
    ['pg_restore', pgRestoreArgs(options, { schema: 'sales', tables: ['Orders'] })],
    ['psql', psqlRestoreArgs(options)],
  ])('%s never carries the password', (_name, args) => {
    expect(args.join(' ')).not.toContain('p@ss');
    expect(args.join(' ')).not.toContain('p%40ss');
    expect(args.join(' ')).toContain("dbname='crm'");
  });

  it('dumps exactly the named tables, uncompressed for backupkit to deflate', () => {
    expect(pgDumpArgs(options)).toEqual([
      "--dbname=host='db.example' port='6543' user='app' dbname='crm' sslmode='require' application_name='x'",
      '--no-password',
      '--strict-names',
      '--format=custom',
      '--compress=0',
      '--table="public"."users"',
      '--table="sales"."Orders"',
      '--exclude-table="public"."audit"',
    ]);
  });

  it('makes plain dumps that replace what they restore', () => {
    expect(pgDumpArgs({ database: 'crm' })).not.toContain('--clean');
    expect(pgDumpArgs({ database: 'crm', format: 'plain' })).toEqual(
      expect.arrayContaining(['--format=plain', '--clean', '--if-exists', '--no-owner']),
    );
  });

  it('restores in one transaction, cleaning first', () => {
    expect(pgRestoreArgs({ database: 'crm' }, undefined)).toEqual([
      "--dbname=dbname='crm'",
      '--no-password',
      '--clean',
      '--if-exists',
      '--no-owner',
      '--single-transaction',
    ]);
    expect(psqlRestoreArgs({ database: 'crm' })).toEqual(expect.arrayContaining(['--single-transaction', 'ON_ERROR_STOP=1']));
  });
});
