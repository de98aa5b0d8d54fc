/**
 * `backupkit daemon` through the built binary, on seconds schedules: real SQLite and PostgreSQL
 * backups that list and restore, cleaning and verifying on schedule, a run skipped while the one
 * before it still goes, a failing target beside a working one, SIGTERM mid-backup, SIGHUP with a
 * broken and then a fixed config, /healthz and /metrics. The slow target's pg_dump is the real one
 * behind a wrapper that holds the dump open while a "hold" file exists, so the test decides when
 * a backup ends.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { type LogLine, parsePrometheus, sampleOf, startDaemon } from '../support/daemon.js';
import { createDatabase, pgInfo, pgTargetConfig, seedVariedTypes } from '../support/pgdb.js';
import { makeFiles, makeSqlite, sqliteRows } from '../support/sqlitedb.js';

const EVERY_2S = '*/2 * * * * *';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const msg = (pattern: RegExp) => (line: LogLine) => pattern.test(line.msg);

function history(dir: string): { time: string; command: string; target: string; id: string | null; ok: boolean; error: string | null }[] {
  return readFileSync(path.join(dir, 'store', 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

/** A pg target whose dump is held open while `hold` exists; `dumpPid` is the wrapper's pid. */
async function slowPgTarget(dir: string) {
  const bin = path.join(dir, 'slowbin');
  mkdirSync(bin);
  const hold = path.join(dir, 'hold');
  const pidFile = path.join(dir, 'dump.pid');
  writeFileSync(path.join(bin, 'pg_dump'), `#!/bin/sh\necho $$ > '${pidFile}'\n'${pgInfo().binDir}/pg_dump' "$@"\nwhile [ -f '${hold}' ]; do sleep 0.1; done\n`, { mode: 0o755 });
  const database = await createDatabase('daemon');
  await seedVariedTypes(database, 50);
  writeFileSync(hold, '');
  onTestFinished(() => {
    try {
      process.kill(-Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // not started, or already gone
    }
  });
  return { config: pgTargetConfig(database, { bin }), hold, dumpPid: () => Number(readFileSync(pidFile, 'utf8')) };
}

/** What is in the storage folder besides complete backups, history and released locks. */
function leftovers(store: string): string[] {
  const stray = readdirSync(store).filter((f) => !/^[A-Za-z0-9_-]+\.(zip|json)$/.test(f) && f !== 'history.jsonl' && f !== '.locks');
  const locks = existsSync(path.join(store, '.locks')) ? readdirSync(path.join(store, '.locks')).map((f) => `.locks/${f}`) : [];
  return [...stray, ...locks];
}

describe('backupkit daemon', () => {
  it('says what runs when, what is skipped and how to stop it', async () => {
    const help = await runCli(['daemon', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['schedule', 'verifySchedule', 'skipped', 'history.jsonl', 'SIGTERM', 'SIGHUP', '/healthz', '/metrics', 'daemon.concurrency']) expect(help.stdout).toContain(text);
  });

  it('backs up, cleans and verifies on schedule; the backups list and restore byte for byte; /metrics tells of them', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'app.sqlite');
    makeSqlite(db);
    makeFiles(path.join(dir, 'uploads'));
    const config = writeConfig(dir, {
      storage: { path: './store' },
      daemon: { listen: '127.0.0.1:0' },
      targets: {
        app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'], schedule: EVERY_2S, verifySchedule: '*/3 * * * * *', retention: { keepLast: 2 }, maxAge: '1h' },
      },
    });
    const daemon = startDaemon(config, dir);
    const start = await daemon.waitFor('the start line', msg(/^daemon started: app: backup \S+, verify \S+$/));
    expect(start.next).toEqual([
      { target: 'app', kind: 'backup', next: expect.stringMatching(ISO) },
      { target: 'app', kind: 'verify', next: expect.stringMatching(ISO) },
    ]);
    // The third backup's clean deletes the first (keepLast 2).
    await daemon.waitFor('a backup whose clean deletes one', msg(/^backup of app finished in \S+: app_\S+ \(.*\); clean: 1 deleted/));
    await daemon.waitFor('a verify', msg(/^verify of app finished in \S+: \d+ archive\(s\) checked$/));
    const url = await daemon.url();

    // /healthz and /metrics read the same state: when /healthz names the same backup before and after a scrape, the scrape saw it.
    let scrape: { health: any; text: string; contentType: string } | undefined;
    for (let tries = 0; !scrape && tries < 20; tries++) {
      const before = await getJson(`${url}/healthz`);
      const response = await fetch(`${url}/metrics`);
      const text = await response.text();
      const after = await getJson(`${url}/healthz`);
      if (before.body.targets[0].id === after.body.targets[0].id) scrape = { health: after, text, contentType: response.headers.get('content-type')! };
    }
    expect(scrape).toBeDefined();
    const { health, text, contentType } = scrape!;
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true, targets: [{ target: 'app', ok: true, id: expect.stringMatching(/^app_/), maxAgeSeconds: 3600, problem: null }] });
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(text);
    expect(types.get('backupkit_runs_total')).toBe('counter');
    for (const name of ['newest_backup_timestamp_seconds', 'newest_backup_size_bytes', 'max_age_seconds', 'last_run_timestamp_seconds', 'last_run_duration_seconds', 'last_run_size_bytes', 'last_run_success', 'next_run_timestamp_seconds']) {
      expect(types.get(`backupkit_${name}`), name).toBe('gauge');
    }
    expect(sampleOf(samples, 'backupkit_newest_backup_timestamp_seconds', { target: 'app' })).toBeCloseTo(Date.parse(health.body.targets[0].createdAt) / 1000, 6);
    expect(sampleOf(samples, 'backupkit_max_age_seconds', { target: 'app' })).toBe(3600);
    expect(sampleOf(samples, 'backupkit_runs_total', { target: 'app', command: 'backup', result: 'ok' })).toBeGreaterThanOrEqual(3);
    expect(sampleOf(samples, 'backupkit_runs_total', { target: 'app', command: 'clean', result: 'ok' })).toBeGreaterThanOrEqual(3);
    expect(sampleOf(samples, 'backupkit_runs_total', { target: 'app', command: 'verify', result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(sampleOf(samples, 'backupkit_last_run_success', { target: 'app', command: 'backup' })).toBe(1);
    expect(sampleOf(samples, 'backupkit_last_run_size_bytes', { target: 'app', command: 'backup' })).toBeGreaterThan(0);
    // Cron times are whole seconds: */2 fires on even seconds, */3 on multiples of three.
    expect(sampleOf(samples, 'backupkit_next_run_timestamp_seconds', { target: 'app', kind: 'backup' })! % 2).toBe(0);
    expect(sampleOf(samples, 'backupkit_next_run_timestamp_seconds', { target: 'app', kind: 'verify' })! % 3).toBe(0);
    const stopped = await daemon.stop('SIGTERM');
    expect(stopped.code, stopped.stderr).toBe(0);

    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });
    const listed = (await cli('--json', 'list')).json().backups as { id: string; sha256: string }[];
    const made = history(dir).filter((h) => h.command === 'backup' && h.ok).map((h) => h.id);
    expect(listed.length).toBeGreaterThanOrEqual(2);
    expect(made.length).toBeGreaterThanOrEqual(3);
    expect(listed.map((b) => b.id)).not.toContain(made[0]);
    expect(made).toEqual(expect.arrayContaining(listed.map((b) => b.id)));
    const verified = (await cli('--json', 'verify')).json().results as { ok: boolean }[];
    expect(verified.map((r) => r.ok)).toEqual(listed.map(() => true));

    const rows = sqliteRows(db);
    const deep = readFileSync(path.join(dir, 'uploads/a/b/deep.bin'));
    const writable = new Database(db);
    writable.exec('DELETE FROM tags; DELETE FROM items WHERE id > 5');
    writable.close();
    rmSync(path.join(dir, 'uploads/a'), { recursive: true });
    const restore = await cli('--json', 'restore', 'app', listed[0]!.id, '--yes', '--no-snapshot');
    expect(restore.code, restore.stderr).toBe(0);
    expect(sqliteRows(db)).toEqual(rows);
    expect(readFileSync(path.join(dir, 'uploads/a/b/deep.bin')).equals(deep)).toBe(true);
  });

  it('skips a run while the last one still goes, and a failing target does not stop the others', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'good.sqlite'));
    const slow = await slowPgTarget(dir);
    const config = writeConfig(dir, {
      storage: { path: './store' },
      daemon: { listen: '127.0.0.1:0', concurrency: 3 },
      targets: {
        good: { driver: 'sqlite', path: './good.sqlite', schedule: EVERY_2S },
        broken: { driver: 'sqlite', path: './missing.sqlite', schedule: EVERY_2S },
        slow: { ...slow.config, schedule: EVERY_2S },
      },
    });
    const daemon = startDaemon(config, dir);
    await daemon.waitFor('the slow backup to start', msg(/^backup of slow started$/));
    const skip = await daemon.waitFor('a skipped run', msg(/^backup of slow skipped: /));
    expect(skip.level).toBe(40);
    // While slow is held, broken fails and good goes on succeeding.
    const firstFailure = await daemon.waitFor('broken to fail', msg(/^backup of broken failed/));
    const after = daemon.logs().indexOf(firstFailure);
    await daemon.waitFor('broken to fail again', msg(/^backup of broken failed/), { from: after + 1 });
    const good = await daemon.waitFor('good to succeed after it', msg(/^backup of good finished/), { from: after + 1 });
    await daemon.waitFor('and again', msg(/^backup of good finished/), { from: daemon.logs().indexOf(good) + 1 });
    expect(firstFailure.level).toBe(50);
    expect(firstFailure.msg).toContain('missing.sqlite');

    const url = await daemon.url();
    const health = await getJson(`${url}/healthz`);
    expect(health.status).toBe(503);
    const byTarget = Object.fromEntries((health.body.targets as { target: string }[]).map((t) => [t.target, t]));
    expect(byTarget.good).toMatchObject({ ok: true, id: expect.stringMatching(/^good_/), maxAgeSeconds: 25 * 3600 });
    expect(byTarget.broken).toMatchObject({ ok: false, id: null, problem: 'no good backup' });
    expect(byTarget.slow).toMatchObject({ ok: false, id: null, problem: 'no good backup' });

    rmSync(slow.hold);
    await daemon.waitFor('the slow backup to end', msg(/^backup of slow finished/));
    const metrics = parsePrometheus(await (await fetch(`${url}/metrics`)).text()).samples;
    expect(sampleOf(metrics, 'backupkit_runs_total', { target: 'slow', command: 'backup', result: 'skipped' })).toBeGreaterThanOrEqual(1);
    expect(sampleOf(metrics, 'backupkit_last_run_success', { target: 'broken', command: 'backup' })).toBe(0);
    expect((await daemon.stop('SIGTERM')).code).toBe(0);

    const runs = history(dir);
    const skipped = runs.filter((r) => r.target === 'slow' && r.error?.startsWith('skipped'));
    expect(skipped.length).toBeGreaterThanOrEqual(1);
    expect(skipped[0]).toMatchObject({ command: 'backup', ok: false, id: null });
    const since = /^skipped: backup of slow still running since (\S+)$/.exec(skipped[0]!.error!)?.[1];
    expect(since).toMatch(ISO);
    expect(Date.parse(since!)).toBeLessThan(Date.parse(skipped[0]!.time));
    expect(runs.filter((r) => r.target === 'broken').every((r) => !r.ok)).toBe(true);
    const listed = (await runCli(['-c', config, '--json', 'list'], { cwd: dir })).json().backups as { target: string }[];
    expect(new Set(listed.map((b) => b.target))).toEqual(new Set(['good', 'slow']));
  });

  it('SIGTERM mid-backup: the dump stops, nothing partial is left or listed, exit 0', async () => {
    const dir = tempDir();
    const slow = await slowPgTarget(dir);
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { slow: { ...slow.config, schedule: EVERY_2S } } });
    const store = path.join(dir, 'store');
    const daemon = startDaemon(config, dir);
    await daemon.waitFor('the backup to start', msg(/^backup of slow started$/));
    const deadline = Date.now() + 20_000;
    while (!readdirSync(store).some((f) => f.endsWith('.partial')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(leftovers(store).some((f) => f.endsWith('.partial'))).toBe(true);

    const stopped = await daemon.stop('SIGTERM');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(daemon.count(msg(/^backup of slow interrupted by SIGTERM/))).toBe(1);
    expect(daemon.count(msg(/^daemon stopped$/))).toBe(1);
    expect(leftovers(store)).toEqual([]);
    // The dump tool is stopped with the run (its group is killed); give the kernel a moment to reap it.
    const alive = () => {
      try {
        process.kill(slow.dumpPid(), 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let tries = 0; alive() && tries < 80; tries++) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toBe(false);
    expect((await runCli(['-c', config, '--json', 'list'], { cwd: dir })).json().stats.count).toBe(0);
    expect(history(dir).at(-1)).toMatchObject({ command: 'backup', target: 'slow', ok: false, error: expect.stringContaining('interrupted by SIGTERM') });
  });

  it('SIGHUP: a broken config is refused and the old schedules go on; a fixed one takes effect', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'));
    makeSqlite(path.join(dir, 'other.sqlite'));
    const first = { storage: { path: './store' }, daemon: { listen: '127.0.0.1:0' }, targets: { app: { driver: 'sqlite', path: './app.sqlite', schedule: EVERY_2S, maxAge: '1h' } } };
    const config = writeConfig(dir, first);
    const daemon = startDaemon(config, dir);
    await daemon.waitFor('a backup', msg(/^backup of app finished/));
    const url = await daemon.url();
    expect(await getJson(`${url}/healthz`)).toMatchObject({ status: 200, body: { ok: true } });

    writeConfig(dir, { ...first, targets: { app: { ...first.targets.app, schedule: '*/2 * * *' } } });
    daemon.signal('SIGHUP');
    const refused = await daemon.waitFor('the reload to be refused', msg(/^config not reloaded/));
    expect(refused.level).toBe(50);
    expect(refused.msg).toContain('targets.app.schedule');
    await daemon.waitFor('the old schedule to go on', msg(/^backup of app started$/), { from: daemon.logs().indexOf(refused) + 1 });

    writeConfig(dir, {
      ...first,
      targets: { app: { driver: 'sqlite', path: './app.sqlite', maxAge: '1s' }, other: { driver: 'sqlite', path: './other.sqlite', schedule: EVERY_2S, maxAge: '1h' } },
    });
    daemon.signal('SIGHUP');
    const reloaded = await daemon.waitFor('the reload', msg(/^config reloaded from /));
    expect(reloaded.next).toEqual([{ target: 'other', kind: 'backup', next: expect.stringMatching(ISO) }]);
    const from = daemon.logs().indexOf(reloaded) + 1;
    await daemon.waitFor('the new target\'s backup', msg(/^backup of other finished/), { from });
    await daemon.waitFor('another', msg(/^backup of other finished/), { from: daemon.logs().findLastIndex(msg(/^backup of other finished/)) + 1 });
    expect(daemon.logs().slice(from).filter(msg(/^backup of app started/))).toEqual([]);

    // app is no longer backed up and may be 1s old: /healthz turns 503 and says why.
    let health = await getJson(`${url}/healthz`);
    for (let tries = 0; health.status === 200 && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      health = await getJson(`${url}/healthz`);
    }
    expect(health.status).toBe(503);
    const app = (health.body.targets as { target: string }[]).find((t) => t.target === 'app');
    expect(app).toMatchObject({ ok: false, maxAgeSeconds: 1, problem: expect.stringMatching(/^newest good backup is \S+ old \(maxAge 1\.0s\)$/) });
    expect((health.body.targets as { target: string }[]).find((t) => t.target === 'other')).toMatchObject({ ok: true });
    expect((await daemon.stop('SIGINT')).code).toBe(0);
  });
});
