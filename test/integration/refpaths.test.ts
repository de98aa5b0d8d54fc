/**
 * Paths an operator types (an archive for restore, inspect and verify; sqlite's --into) resolve
 * against the folder the command runs in as the app is told it (deps.cwd), never the process's.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { backupTarget } from '../../src/app/backup.js';
import { getTarget } from '../../src/app/deps.js';
import { inspectBackup } from '../../src/app/inspect.js';
import { resolveRef } from '../../src/app/refs.js';
import { restoreBackup } from '../../src/app/restore.js';
import { verifyBackups } from '../../src/app/verify.js';
import { appDeps, testClock } from '../support/app.js';
import { tempDir, writeConfig } from '../support/cli.js';
import { makeSqlite, sqliteRows } from '../support/sqlitedb.js';

async function setup() {
  const dir = tempDir();
  makeSqlite(path.join(dir, 'app.sqlite'), 7);
  const raw = { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite' } } };
  const configFile = writeConfig(dir, raw);
  // The command runs in <dir>/work; the test process runs elsewhere.
  const cwd = path.join(dir, 'work');
  mkdirSync(cwd);
  expect(process.cwd()).not.toBe(cwd);
  const deps = { ...appDeps(configFile, raw, testClock('2026-05-01T02:00:00Z')), cwd };
  const { sidecar } = await backupTarget(deps, getTarget(deps, 'app'), { parts: ['db'], tags: [], note: null });
  return { dir, cwd, deps, id: sidecar.id, relative: `../store/${sidecar.archive.file}` };
}

describe('path refs', () => {
  it('resolve against deps.cwd for restore, inspect and verify', async () => {
    const { deps, dir, id, relative } = await setup();
    const resolved = await resolveRef(deps, relative, 'app');
    expect(resolved.name).toBe(path.join(dir, 'store', `${id}.zip`));
    expect((await inspectBackup(deps, relative, 'app')).id).toBe(id);
    const { outcomes } = await verifyBackups(deps, [relative], { target: undefined });
    expect(outcomes.map((o) => [o.id, o.ok])).toEqual([[id, true]]);
    const restored = await restoreBackup(deps, 'app', { ref: relative, only: undefined, into: undefined, dryRun: true, snapshot: false, yes: true, force: false, flush: false, interactive: false, confirm: async () => false });
    expect(restored.id).toBe(id);
  });

  it('a path that does not exist is a usage error naming it as given and as resolved', async () => {
    const { deps, cwd } = await setup();
    for (const call of [
      () => resolveRef(deps, './nope.zip', 'app'),
      () => inspectBackup(deps, './nope.zip', 'app'),
      () => verifyBackups(deps, ['./nope.zip'], { target: undefined }),
    ]) {
      const error = await call().then(() => undefined, (e: unknown) => e as { exitCode: number; message: string });
      expect(error?.exitCode).toBe(2);
      expect(error?.message).toContain('./nope.zip');
      expect(error?.message).toContain(path.join(cwd, 'nope.zip'));
    }
  });

  it('sqlite --into a relative file lands in deps.cwd', async () => {
    const { deps, cwd, dir, id } = await setup();
    const into = `refpaths-${randomUUID()}.sqlite`;
    // Where a wrong resolution would put it: removed, so that a failing run leaves nothing behind.
    onTestFinished(() => rmSync(path.join(process.cwd(), into), { force: true }));
    await restoreBackup(deps, 'app', { ref: id, only: undefined, into, dryRun: false, snapshot: false, yes: true, force: false, flush: false, interactive: false, confirm: async () => false });
    expect(existsSync(path.join(process.cwd(), into))).toBe(false);
    expect(sqliteRows(path.join(cwd, into))).toEqual(sqliteRows(path.join(dir, 'app.sqlite')));
  });
});
