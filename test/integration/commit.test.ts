/**
 * A backup stopped or failing while its storages commit one after another: where it had landed
 * whole, it is deleted as a backup (no sidecar left without its archive); where the archive was
 * committed but its sidecar not yet written, or written and then reported failed, both go.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupTarget } from '../../src/app/backup.js';
import { getTarget } from '../../src/app/deps.js';
import { ExitCode, InterruptedError, exitCodeOf } from '../../src/core/errors.js';
import { appDeps, testClock } from '../support/app.js';
import { tempDir, writeConfig } from '../support/cli.js';
import { makeSqlite } from '../support/sqlitedb.js';

/** Backups and leftovers in a storage folder: everything but the folders the storage keeps. */
function contents(folder: string): string[] {
  return existsSync(folder) ? readdirSync(folder).filter((name) => name !== '.locks' && name !== 'history.jsonl').sort() : [];
}

describe('a backup stopped between its storages\' commits', () => {
  it('leaves no backup, whole or half, in the storage that had landed or in the one that was committing', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'), 20);
    mkdirSync(path.join(dir, 'uploads'));
    writeFileSync(path.join(dir, 'uploads', 'a.txt'), 'a file');
    const raw = {
      storages: { first: { type: 'local', path: './first' }, second: { type: 'local', path: './second' } },
      targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] } },
    };
    const deps = appDeps(writeConfig(dir, raw), raw, testClock('2026-12-07T02:00:00Z'));
    const controller = new AbortController();
    const [first, second] = deps.storages.all;
    expect([first!.name, second!.name]).toEqual(['first', 'second']);
    // The second storage commits its archive, then the run is interrupted before its sidecar.
    const create = second!.createArchive.bind(second);
    let committed = false;
    second!.createArchive = (id, file, options) => {
      const upload = create(id, file, options);
      return {
        ...upload,
        async commit() {
          await upload.commit();
          committed = existsSync(path.join(dir, 'second', file));
          controller.abort(new InterruptedError('interrupted by SIGINT; partial files were removed'));
          throw new Error('the commit was stopped');
        },
      };
    };

    const error = await backupTarget({ ...deps, signal: controller.signal }, getTarget(deps, 'app'), { parts: ['db', 'files'], tags: [], note: null }).catch((e: unknown) => e);
    expect(exitCodeOf(error)).toBe(ExitCode.interrupted);
    expect(committed).toBe(true);
    expect(contents(path.join(dir, 'first'))).toEqual([]);
    expect(contents(path.join(dir, 'second'))).toEqual([]);
    expect((await first!.list()).sidecars).toEqual([]);
  });

  it('a sidecar write that fails after its file landed (a failed fsync, say) leaves no listed backup without its archive', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'), 20);
    const raw = {
      storages: { first: { type: 'local', path: './first' }, second: { type: 'local', path: './second' } },
      targets: { app: { driver: 'sqlite', path: './app.sqlite' } },
    };
    const deps = appDeps(writeConfig(dir, raw), raw, testClock('2026-12-07T02:00:00Z'));
    const [first, second] = deps.storages.all;
    const writeSidecar = first!.writeSidecar.bind(first);
    first!.writeSidecar = async (sidecar) => {
      await writeSidecar(sidecar);
      throw new Error('fsync: input/output error');
    };
    const outcome = await backupTarget(deps, getTarget(deps, 'app'), { parts: ['db'], tags: [], note: null });
    expect(outcome.storages).toEqual(['second']);
    expect(outcome.failed.map((f) => f.storage)).toEqual(['first']);
    expect(contents(path.join(dir, 'first'))).toEqual([]);
    expect(contents(path.join(dir, 'second'))).toEqual([`${outcome.sidecar.id}.json`, `${outcome.sidecar.id}.zip`]);
  });
});
