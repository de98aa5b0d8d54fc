/**
 * doctor through the built binary, against the real engines: healthy targets pass (exit 0); a
 * server that is down, one that never answers, a missing tool, a stale newest backup, a failed
 * verify and a bucket that refuses writes each fail their own check with a hint (exit 1); an
 * unknown target is a usage error (exit 2). Passwords never show.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BIN, type CliResult, runCli, tempDir, writeConfig } from '../support/cli.js';
import { createDatabase, pgInfo, pgTargetConfig, sql } from '../support/pgdb.js';
import { freePort } from '../support/ports.js';
import { s3Env, s3StorageConfig } from '../support/s3.js';
import { isPutObject, startS3Server } from '../support/s3server.js';
import { makeSqlite } from '../support/sqlitedb.js';
import { flipByte } from '../support/tamper.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

const CHECKS = ['config', 'tools', 'database', 'storage:local', 'backup-age', 'verify'];

function setup(targets: Record<string, unknown>, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  const dir = tempDir();
  const config = writeConfig(dir, { storage: { path: './store' }, targets, ...extra });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir, env });
  return { dir, config, cli };
}

/** The checks of `target` in a doctor --json document, by name. */
function checksOf(result: CliResult, target: string): Record<string, Check> {
  const doc = result.json<{ targets: { target: string; checks: Check[] }[] }>();
  const found = doc.targets.find((t) => t.target === target);
  if (!found) throw new Error(`no target ${target} in:\n${result.stdout}`);
  return Object.fromEntries(found.checks.map((c) => [c.name, c]));
}

async function pgDatabase(prefix: string): Promise<string> {
  const database = await createDatabase(prefix);
  await sql(database, 'CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers SELECT i, $$c$$ || i FROM generate_series(1, 50) AS i');
  return database;
}

/** A loopback server that takes connections and never says a word, until the test ends. */
async function silentServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}

describe('doctor', () => {
  it('passes a sqlite and a pg target with fresh, verified backups (exit 0), in the contract JSON and as a table', async () => {
    const database = await pgDatabase('doctor_ok');
    const { dir, cli } = setup({
      app: { driver: 'sqlite', path: './app.sqlite', maxAge: '25h' },
      crm: pgTargetConfig(database, { schedule: '0 2 * * *' }),
    });
    makeSqlite(path.join(dir, 'app.sqlite'));
    expect((await cli('backup')).code).toBe(0);
    expect((await cli('verify')).code).toBe(0);

    const doctor = await cli('--json', 'doctor');
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    const doc = doctor.json();
    expect(Object.keys(doc).sort()).toEqual(['ok', 'targets']);
    expect(doc.ok).toBe(true);
    expect(doc.targets.map((t: { target: string; ok: boolean }) => [t.target, t.ok])).toEqual([['app', true], ['crm', true]]);
    for (const target of doc.targets) {
      expect(target.checks.map((c: Check) => c.name)).toEqual(CHECKS);
      for (const check of target.checks) expect(Object.keys(check).sort()).toEqual(['detail', 'name', 'ok']);
    }
    const app = checksOf(doctor, 'app');
    expect(app.config!.detail).toBe('driver sqlite; storages local; maxAge 25h');
    expect(app.tools!.detail).toMatch(/^sqlite \(embedded\) 3\.\d+\.\d+$/);
    expect(app.database!.detail).toBe(`SQLite database ${path.join(dir, 'app.sqlite')}, 2 tables, ${app.database!.detail.split(', ').at(-1)}`);
    expect(app['storage:local']!.detail).toMatch(new RegExp(`^${path.join(dir, 'store')}: writable, [\\d.]+ [KMGT]?i?B free of [\\d.]+ [KMGT]?i?B$`));
    expect(app['backup-age']!.detail).toMatch(/^newest good backup is \d+s old \(maxAge 25h\)$/);
    expect(app.verify!.detail).toMatch(/^last verify \d+ seconds? ago: app_\d{8}_\d{6} ok$/);
    const crm = checksOf(doctor, 'crm');
    // A daily schedule brings the default maxAge of 25h.
    expect(crm.config!.detail).toBe('driver pg_dump; storages local; schedule "0 2 * * *"; maxAge 25h');
    expect(crm.tools!.detail).toMatch(/^pg_dump \d+\.\d+, pg_restore \d+\.\d+$/);
    expect(crm.database!.detail).toMatch(new RegExp(`^PostgreSQL \\d+\\.\\d+ at 127\\.0\\.0\\.1:${pgInfo().port}/${database}$`));
    expect(crm['backup-age']!.detail).toMatch(/^newest good backup is \d+s old \(maxAge 25h\)$/);
    // The probe left nothing behind.
    expect(readdirSync(path.join(dir, 'store')).filter((n) => n.includes('probe'))).toEqual([]);

    const table = await cli('doctor', 'crm');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^TARGET +CHECK +STATUS +DETAIL\n/);
    expect(table.stdout).toMatch(/^crm +database +ok +PostgreSQL /m);
    expect(table.stdout.trim().split('\n').at(-1)).toBe('all 6 checks passed');
    expect(doctor.stdout + doctor.stderr + table.stdout + table.stderr).not.toContain(pgInfo().password);
  });

  it('fails database at once when nothing listens on the port, with what to do, the password hidden (exit 1)', async () => {
    const port = await freePort();
    const password = 'Doctor-s3cret-pw';
    const { cli } = setup({ crm: { driver: 'pg_dump', url: `postgres://backup:${password}@127.0.0.1:${port}/crm`, bin: pgInfo().binDir } });
    // A long limit: the check fails on the refused connection, not on the time limit.
    const doctor = await cli('--json', 'doctor', '--timeout', '5m');
    expect(doctor.code).toBe(1);
    expect(doctor.json().ok).toBe(false);
    const checks = checksOf(doctor, 'crm');
    expect(checks.database).toEqual({
      name: 'database',
      ok: false,
      detail: `cannot connect to PostgreSQL at 127.0.0.1:${port}/crm: connect ECONNREFUSED 127.0.0.1:${port}`,
      hint: expect.stringContaining(`Start PostgreSQL at 127.0.0.1:${port}`),
    });
    expect(checks.tools!.ok).toBe(true);
    expect(checks['backup-age']).toMatchObject({ ok: true, detail: 'no backup yet' });

    const table = await cli('doctor');
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^crm +database +FAIL +cannot connect to PostgreSQL/m);
    expect(table.stdout).toContain(`What to do:\n  crm database: Start PostgreSQL at 127.0.0.1:${port}`);
    expect(table.stdout.trim().split('\n').at(-1)).toBe('1 of 6 checks failed');
    for (const output of [doctor.stdout, doctor.stderr, table.stdout, table.stderr]) expect(output).not.toContain(password);
  });

  it('fails database within --timeout when the server never answers', async () => {
    const port = await silentServer();
    const { cli } = setup({ crm: { driver: 'pg_dump', url: `postgres://backup:pw-never-shown@127.0.0.1:${port}/crm`, bin: pgInfo().binDir } });
    const doctor = await cli('--json', 'doctor', '--timeout', '2s');
    expect(doctor.code).toBe(1);
    const checks = checksOf(doctor, 'crm');
    expect(checks.database).toMatchObject({ ok: false, detail: `no answer from 127.0.0.1:${port}/crm within 2s`, hint: expect.stringContaining('--timeout') });
    expect(checks['storage:local']!.ok).toBe(true);
  });

  it('fails tools with the package to install when the tools are nowhere to be found (exit 1)', async () => {
    const database = await pgDatabase('doctor_tools');
    const empty = path.join(tempDir(), 'empty-bin');
    mkdirSync(empty);
    const { cli } = setup({ crm: pgTargetConfig(database, { bin: empty }) }, {}, { PATH: empty });
    const doctor = await cli('--json', 'doctor');
    expect(doctor.code).toBe(1);
    const checks = checksOf(doctor, 'crm');
    expect(checks.tools).toMatchObject({ ok: false, detail: `pg_dump not found in ${empty} or PATH` });
    expect(checks.tools!.hint).toContain('apt-get install postgresql-client');
    expect(checks.tools!.hint).toContain('"bin"');
    // The database is reached without the tools.
    expect(checks.database!.ok).toBe(true);
  });

  it('fails backup-age when the newest good backup is older than maxAge; a pre-restore snapshot does not count', async () => {
    const { dir, config, cli } = setup({ app: { driver: 'sqlite', path: './app.sqlite', maxAge: '25h' } });
    makeSqlite(path.join(dir, 'app.sqlite'));
    // A real backup, made by the CLI with its clock two days back.
    execFileSync('faketime', ['-f', '-2d', process.execPath, BIN, '-c', config, 'backup'], { cwd: dir, env: { ...process.env, CI: 'true', FAKETIME_DONT_FAKE_MONOTONIC: '1' }, stdio: 'pipe' });
    const stale = await cli('--json', 'doctor');
    expect(stale.code).toBe(1);
    const age = checksOf(stale, 'app')['backup-age']!;
    expect(age).toMatchObject({ ok: false, detail: 'newest good backup is 2d old (maxAge 25h)' });
    expect(age.hint).toContain('backupkit backup app');

    // Restoring it takes a fresh pre-restore snapshot: not a backup doctor counts.
    expect((await cli('restore', 'app', 'latest', '--yes')).code).toBe(0);
    expect((await cli('--json', 'list')).json().backups.map((b: { tags: string[] }) => b.tags)).toEqual([['pre-restore'], []]);
    const still = await cli('--json', 'doctor');
    expect(checksOf(still, 'app')['backup-age']).toMatchObject({ ok: false, detail: 'newest good backup is 2d old (maxAge 25h)' });

    expect((await cli('backup')).code).toBe(0);
    const fresh = await cli('--json', 'doctor');
    expect(fresh.code).toBe(0);
    expect(checksOf(fresh, 'app')['backup-age']!.detail).toMatch(/^newest good backup is \d+s old \(maxAge 25h\)$/);
  });

  it('fails backup-age with no backup when a schedule says one is due; passes without one', async () => {
    const { dir, cli } = setup({
      due: { driver: 'sqlite', path: './app.sqlite', schedule: '0 */6 * * *' },
      adhoc: { driver: 'sqlite', path: './app.sqlite' },
    });
    makeSqlite(path.join(dir, 'app.sqlite'));
    const doctor = await cli('--json', 'doctor');
    expect(doctor.code).toBe(1);
    expect(checksOf(doctor, 'due')['backup-age']).toMatchObject({ ok: false, detail: 'no backup yet (maxAge 25h)' });
    expect(checksOf(doctor, 'adhoc')['backup-age']).toEqual({ name: 'backup-age', ok: true, detail: 'no backup yet' });
    expect(doctor.json().targets.map((t: { ok: boolean }) => t.ok)).toEqual([false, true]);
  });

  it('fails verify when the last verify of the target failed, naming the backup', async () => {
    const { dir, cli } = setup({ app: { driver: 'sqlite', path: './app.sqlite' } });
    makeSqlite(path.join(dir, 'app.sqlite'));
    const id = (await cli('--json', 'backup')).json().backups[0].id;
    flipByte(path.join(dir, 'store', `${id}.zip`), 200);
    expect((await cli('verify')).code).toBe(3);
    const doctor = await cli('--json', 'doctor');
    expect(doctor.code).toBe(1);
    const verify = checksOf(doctor, 'app').verify!;
    expect(verify.ok).toBe(false);
    expect(verify.detail).toMatch(new RegExp(`^last verify \\d+ seconds? ago: ${id} failed: `));
    expect(verify.hint).toContain(`backupkit verify ${id}`);
  });

  it('probes an S3 storage: passes, then fails with a hint when the bucket refuses writes', async () => {
    const server = await startS3Server();
    onTestFinished(() => server.stop());
    const prefix = `${server.prefix}doctor/`;
    const { dir, cli } = setup(
      { app: { driver: 'sqlite', path: './app.sqlite' } },
      { storage: undefined, storages: { local: { type: 'local', path: './store' }, offsite: s3StorageConfig(server, prefix) } },
      s3Env(server),
    );
    makeSqlite(path.join(dir, 'app.sqlite'));
    const healthy = await cli('--json', 'doctor');
    expect(healthy.code, healthy.stdout + healthy.stderr).toBe(0);
    expect(checksOf(healthy, 'app')['storage:offsite']!.detail).toBe(`s3://${server.bucket}/${prefix}: listed, wrote and removed a probe object`);
    expect(await server.keys(prefix)).toEqual([]);

    if (!server.canInjectFaults) return;
    server.faults.inject({ match: isPutObject, action: { status: 403, code: 'AccessDenied' } });
    const refused = await cli('--json', 'doctor');
    expect(refused.code).toBe(1);
    const offsite = checksOf(refused, 'app')['storage:offsite']!;
    expect(offsite).toMatchObject({ ok: false, detail: expect.stringMatching(/^storage offsite: PutObject of s3:\/\/.+ failed: .*AccessDenied/) });
    expect(offsite.hint).toContain('accessKeyId and secretAccessKey');
    expect(checksOf(refused, 'app')['storage:local']!.ok).toBe(true);
  });

  it('an unknown target is a usage error (exit 2)', async () => {
    const { cli } = setup({ app: { driver: 'sqlite', path: './app.sqlite' } });
    const doctor = await cli('--json', 'doctor', 'ap');
    expect(doctor.code).toBe(2);
    expect(doctor.json().error.message).toBe('unknown target "ap" (did you mean "app"?)');
  });
});
