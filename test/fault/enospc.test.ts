/**
 * A storage folder on a full filesystem: a small tmpfs mounted over it, and a backup larger than
 * it. The run fails (exit 1) saying there is no space left in that storage, lists nothing, leaves
 * no partial file and no lock, and the next run works once the backup fits. Mounting needs root
 * (and a kernel that lets this container mount): without it the tests are skipped, saying why.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Sidecar } from '../../src/core/manifest.js';
import { LocalStorage } from '../../src/storage/local.js';
import { runCli, tempDir, writeConfig } from '../support/cli.js';
import { acquireLock } from '../../src/storage/lock.js';
import { lockFiles, partialFiles, storageFiles } from '../support/faults.js';
import { makeSqlite } from '../support/sqlitedb.js';

/** Why a tmpfs cannot be mounted here, or undefined when it can. */
function mountRefused(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root, so no tmpfs can be mounted';
  const probe = mkdtempSync(path.join(os.tmpdir(), 'backupkit-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `mount -t tmpfs was refused (${String((error as { stderr?: Buffer }).stderr ?? error).trim()})`;
  } finally {
    rmdirSync(probe);
  }
}

const refused = mountRefused();
const title = (what: string) => (refused ? `${what} (skipped: ${refused})` : what);

/** A tmpfs of `size` mounted at `dir` until the test ends. */
function mountSmall(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  onTestFinished(() => {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
  });
}

describe('a full storage filesystem', () => {
  it.skipIf(refused !== undefined)(title('a backup larger than the space left fails naming the storage, and leaves nothing behind'), async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    mountSmall(store, '8m');
    makeSqlite(path.join(dir, 'app.sqlite'));
    mkdirSync(path.join(dir, 'uploads'));
    writeFileSync(path.join(dir, 'uploads', 'small.txt'), 'small\n');
    // Random bytes do not compress: 12 MiB cannot fit in 8.
    writeFileSync(path.join(dir, 'uploads', 'video.bin'), randomBytes(12 << 20));
    const config = writeConfig(dir, { storage: { path: './store' }, targets: { app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] } } });
    const cli = (...args: string[]) => runCli(['-c', config, ...args], { cwd: dir });

    const full = await cli('--json', 'backup', 'app');
    expect(full.code, full.stderr).toBe(1);
    const failure = full.json().failures[0];
    expect(failure.target).toBe('app');
    expect(failure.error).toMatch(/no space left/i);
    expect(failure.error).toContain('local');
    expect(failure.error).toContain(store);
    expect(full.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect((await cli('--json', 'list')).json().stats.count).toBe(0);
    expect(partialFiles(store)).toEqual([]);
    expect(storageFiles(store).filter((f) => f.endsWith('.zip') || f.endsWith('.json'))).toEqual([]);
    expect(lockFiles(store)).toEqual([]);

    // Space is free again (the partial archive was removed): a backup that fits goes through.
    rmSync(path.join(dir, 'uploads', 'video.bin'));
    const next = await cli('--json', 'backup', 'app');
    expect(next.code, next.stderr).toBe(0);
    expect((await cli('--json', 'list')).json().backups.map((b: { id: string }) => b.id)).toEqual([next.json().backups[0].id]);
    expect(partialFiles(store)).toEqual([]);
    expect((await cli('--json', 'verify')).code).toBe(0);
  });

  it.skipIf(refused !== undefined)(title('a sidecar that does not fit leaves no temporary file'), async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    mountSmall(store, '1m');
    const storage = new LocalStorage(store);
    // Fill the filesystem to the last block.
    try {
      writeFileSync(path.join(store, 'filler'), Buffer.alloc(2 << 20));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const sidecar = { id: 'app_20260101_000000', target: 'app', archive: { file: 'app_20260101_000000.zip', size: 1, sha256: 'x' }, note: 'x'.repeat(8192) } as unknown as Sidecar;
    const error = await storage.writeSidecar(sidecar).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toMatch(/no space left/i);
    expect(error?.message).toContain(store);
    expect(storageFiles(store)).toEqual(['filler']);
  });

  it.skipIf(refused !== undefined)(title('a lock that cannot be written leaves no temporary file, and takes once there is room'), async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    mountSmall(store, '1m');
    mkdirSync(path.join(store, '.locks'));
    try {
      writeFileSync(path.join(store, 'filler'), Buffer.alloc(2 << 20));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const error = await acquireLock(store, 'app', 'backup', new Date()).then(() => undefined, (e: unknown) => e as NodeJS.ErrnoException);
    expect(error?.code).toBe('ENOSPC');
    expect(lockFiles(store)).toEqual([]);
    rmSync(path.join(store, 'filler'));
    const lock = await acquireLock(store, 'app', 'backup', new Date());
    expect(lockFiles(store)).toEqual(['app.lock']);
    await lock.release();
    expect(lockFiles(store)).toEqual([]);
  });
});
