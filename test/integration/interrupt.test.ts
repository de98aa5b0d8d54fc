/**
 * Interrupted and timed-out backups leave nothing that `list` shows; the next run removes what a
 * killed run left behind. The dump is slowed by a wrapper that runs the real pg_dump and then holds
 * its stdout open, so the interruption lands mid-dump.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BIN, runCli, tempDir, writeConfig } from '../support/cli.js';
import { createDatabase, pgInfo, pgTargetConfig, seedVariedTypes } from '../support/pgdb.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup(timeout?: string) {
  const dir = tempDir();
  const bin = path.join(dir, 'slowbin');
  mkdirSync(bin);
  const pidFile = path.join(dir, 'dump.pid');
  writeFileSync(path.join(bin, 'pg_dump'), `#!/bin/sh\necho $$ > '${pidFile}'\n'${pgInfo().binDir}/pg_dump' "$@"\nsleep 60\n`, { mode: 0o755 });
  const database = await createDatabase('interrupt');
  await seedVariedTypes(database, 50);
  const config = writeConfig(dir, {
    storage: { path: './store' },
    targets: {
      slow: pgTargetConfig(database, { bin, ...(timeout ? { timeout } : {}) }),
      fast: pgTargetConfig(database),
    },
  });
  const store = path.join(dir, 'store');
  const partials = () => (existsSync(store) ? readdirSync(store).filter((f) => f.endsWith('.partial')) : []);
  const dumpPid = () => Number(readFileSync(pidFile, 'utf8'));
  onTestFinished(() => {
    try {
      process.kill(-dumpPid(), 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return { dir, config, store, partials, dumpPid, pidFile };
}

function startBackup(config: string, dir: string, target: string) {
  const child = spawn(process.execPath, [BIN, '-c', config, '--json', 'backup', target], { cwd: dir, env: { ...process.env, CI: 'true' } });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, closed, stdout: () => stdout };
}

describe('interrupted backups', () => {
  it('SIGKILL mid-dump: nothing is listed, and the next run removes the leftovers', async () => {
    const { dir, config, partials, pidFile } = await setup();
    const run = startBackup(config, dir, 'slow');
    await until('the dump to start writing', () => existsSync(pidFile) && partials().length > 0);
    run.child.kill('SIGKILL');
    await run.closed;
    expect(partials()).toHaveLength(1);
    const list = await runCli(['-c', config, '--json', 'list'], { cwd: dir });
    expect(list.json().stats.count).toBe(0);

    const next = await runCli(['-c', config, '--json', 'backup', 'fast'], { cwd: dir });
    expect(next.code, next.stderr).toBe(0);
    // Leftovers are per target: the fast target's run leaves the slow target's alone...
    expect(partials()).toHaveLength(1);
    // ...and the slow target's next run removes them (its dump tool is the real pg_dump this time).
    writeFileSync(config, readFileSync(config, 'utf8').replace(/"bin": "[^"]*slowbin"/, `"bin": "${pgInfo().binDir}"`));
    const again = await runCli(['-c', config, '--json', 'backup', 'slow'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('leftover');
    expect(partials()).toEqual([]);
    expect((await runCli(['-c', config, '--json', 'list'], { cwd: dir })).json().stats.count).toBe(2);
  });

  it('SIGINT mid-dump: exit 130, the partial file removed, the dump tool stopped', async () => {
    const { dir, config, partials, pidFile, dumpPid, store } = await setup();
    const run = startBackup(config, dir, 'slow');
    await until('the dump to start writing', () => existsSync(pidFile) && partials().length > 0);
    run.child.kill('SIGINT');
    const { code } = await run.closed;
    expect(code).toBe(130);
    expect(JSON.parse(run.stdout()).error.code).toBe(130);
    expect(partials()).toEqual([]);
    await until('the dump tool to stop', () => !alive(dumpPid()), 8000);
    expect(readdirSync(store).filter((f) => f.endsWith('.zip'))).toEqual([]);
  });

  it('a timeout stops the dump tool, removes the partial file and exits 1', async () => {
    const { dir, config, partials, dumpPid } = await setup('2s');
    const started = Date.now();
    const result = await runCli(['-c', config, '--json', 'backup', 'slow'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result.json().failures[0].error).toContain('timed out after 2.0s');
    expect(partials()).toEqual([]);
    await until('the dump tool to stop', () => !alive(dumpPid()), 8000);
    const history = readFileSync(path.join(dir, 'store', 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.at(-1)).toMatchObject({ command: 'backup', target: 'slow', ok: false });
  });
});
