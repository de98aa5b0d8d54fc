/**
 * verify --deep on its other paths: the scratch dropped after SIGINT, a timeout and a failing
 * restore tool, and dropped by the next run after a SIGKILL; encrypted backups (the identity
 * needed, exit 2 without); Django's verifyInto alias, and a clear skip without it. The restore is
 * slowed by a pg_restore wrapper that records its pid and sleeps, so the interruption lands once
 * the scratch database exists.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BIN, runCli, tempDir, writeConfig } from '../support/cli.js';
import { PROJECT, PYTHON, setupShop, shopFingerprint } from '../support/django.js';
import { createDatabase, pgInfo, pgTargetConfig, seedVariedTypes, sql } from '../support/pgdb.js';
import { makeSqlite } from '../support/sqlitedb.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A pg target whose pg_restore is `restore` (a shell script body); pg_dump is the real one. */
async function slowPg(target: string, restore: string, extra: Record<string, unknown> = {}) {
  const dir = tempDir();
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const pidFile = path.join(dir, 'restore.pid');
  writeFileSync(path.join(bin, 'pg_dump'), `#!/bin/sh\nexec '${pgInfo().binDir}/pg_dump' "$@"\n`, { mode: 0o755 });
  writeFileSync(path.join(bin, 'pg_restore'), `#!/bin/sh\necho $$ > '${pidFile}'\n${restore}\n`, { mode: 0o755 });
  const database = await createDatabase('deeppaths');
  await seedVariedTypes(database, 20);
  const config = writeConfig(dir, { storage: { path: './store' }, targets: { [target]: pgTargetConfig(database, { bin, ...extra }) } });
  const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
  const backup = await cli('--json', 'backup', target);
  expect(backup.code, backup.stderr).toBe(0);
  const scratches = async () => (await sql<{ datname: string }>('postgres', 'SELECT datname FROM pg_database')).map((r) => r.datname).filter((n) => n.startsWith(`bk_verify_${target}_`));
  const restorePid = () => Number(readFileSync(pidFile, 'utf8'));
  onTestFinished(() => {
    try {
      if (existsSync(pidFile)) process.kill(-restorePid(), 'SIGKILL');
    } catch {
      // already gone
    }
  });
  const start = () => {
    const child = spawn(process.execPath, [BIN, '-c', config, '--json', 'verify', '--deep'], { cwd: dir, env: { ...process.env, CI: 'true' } });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, closed, stdout: () => stdout };
  };
  return { dir, config, cli, scratches, pidFile, restorePid, start };
}

describe('verify --deep: the scratch on every path', () => {
  it('after a SIGKILL, the scratch database stays until the next deep verify drops it', async () => {
    const { config, cli, scratches, pidFile, restorePid, start } = await slowPg('killdeep', 'sleep 60');
    const run = start();
    await until('the test restore to start', () => existsSync(pidFile));
    const [scratch] = await scratches();
    expect(scratch).toMatch(/^bk_verify_killdeep_[0-9a-z]{4}_[0-9a-z]+_[0-9a-z]+_[0-9a-z]{4}$/);
    run.child.kill('SIGKILL');
    await run.closed;
    process.kill(-restorePid(), 'SIGKILL');
    expect(await scratches()).toEqual([scratch]);

    writeFileSync(config, readFileSync(config, 'utf8').replace(/"bin": "[^"]*"/, `"bin": "${pgInfo().binDir}"`));
    const next = await cli('--json', 'verify', '--deep');
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`dropped ${scratch}`);
    expect(await scratches()).toEqual([]);
  });

  it('SIGINT mid-restore: exit 130, the restore tool stopped, the scratch dropped', async () => {
    const { scratches, pidFile, restorePid, start } = await slowPg('intdeep', 'sleep 60');
    const run = start();
    await until('the test restore to start', () => existsSync(pidFile));
    expect(await scratches()).toHaveLength(1);
    run.child.kill('SIGINT');
    expect(await run.closed).toBe(130);
    expect(JSON.parse(run.stdout()).error.code).toBe(130);
    expect(await scratches()).toEqual([]);
    await until('the restore tool to stop', () => !alive(restorePid()));
  });

  it('a timeout (exit 1) and a failing restore tool (exit 1) drop the scratch too', async () => {
    const slow = await slowPg('timedeep', 'sleep 60', { timeout: '3s' });
    const timedOut = await slow.cli('--json', 'verify', '--deep');
    expect(timedOut.code).toBe(1);
    expect(timedOut.json().results[0]).toMatchObject({ ok: false });
    expect(timedOut.json().results[0].error).toMatch(/test restore failed: .*timed out after 3\.0s/);
    expect(await slow.scratches()).toEqual([]);

    const failing = await slowPg('faildeep', 'cat > /dev/null; echo "pg_restore: error: something broke" >&2; exit 1');
    const failed = await failing.cli('--json', 'verify', '--deep');
    expect(failed.code).toBe(1);
    expect(failed.json().results[0].error).toContain('something broke');
    expect(await failing.scratches()).toEqual([]);
  });
});

describe('verify --deep: encrypted backups and Django', () => {
  it('needs the identity of an encrypted backup (exit 2 without it) and restores it with one', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'), 50);
    const key = path.join(dir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite', encryption: { recipients: [recipient] } } } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    expect((await cli('backup')).code).toBe(0);
    const plain = await cli('--json', 'verify');
    expect(plain.json().results[0].checks).toEqual(['archive']);
    const without = await cli('--json', 'verify', '--deep');
    expect(without.code).toBe(2);
    expect(without.json().results[0].error).toContain('needs its identity');
    const withKey = await cli('--json', '--identity', key, 'verify', '--deep');
    expect(withKey.code, withKey.stderr).toBe(0);
    expect(withKey.json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'checksums', 'manifest', 'restore'] });
  });

  it('skips a Django target without verifyInto, saying why, and restores into its verifyInto alias, emptied after', async () => {
    const shop = setupShop();
    const target = { driver: 'django-dumpdata', project: PROJECT, python: PYTHON };
    const config = writeConfig(shop.dir, { storage: { path: './store' }, targets: { shop: target } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: shop.dir, env: shop.env });
    expect((await cli('backup')).code).toBe(0);
    const skipped = await cli('--json', 'verify', '--deep');
    expect(skipped.code, skipped.stderr).toBe(0);
    const [result] = skipped.json().results;
    expect(result).toMatchObject({ ok: true, checks: ['archive', 'checksums', 'manifest'] });
    expect(result.skipped).toContain('verifyInto');
    expect((await cli('verify', '--deep')).stdout).toContain('test restore skipped: the target has no "verifyInto"');

    writeConfig(shop.dir, { storage: { path: './store' }, targets: { shop: { ...target, verifyInto: 'other' } } });
    const deep = await cli('--json', 'verify', '--deep');
    expect(deep.code, deep.stderr).toBe(0);
    expect(deep.json().results[0]).toMatchObject({ ok: true, checks: ['archive', 'checksums', 'manifest', 'restore'] });
    expect(Object.values(shopFingerprint(shop, 'other')).flat()).toEqual([]);

    writeConfig(shop.dir, { storage: { path: './store' }, targets: { shop: { ...target, verifyInto: 'default' } } });
    const own = await cli('verify', '--deep');
    expect(own.code).toBe(2);
    expect(own.stderr).toContain('verifyInto: "default" is the target\'s own database');
  });
});
