/** The storage contract for a local folder. */
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { REFRESH_MS, acquireLock } from '../../src/storage/lock.js';
import { tempDir } from '../support/cli.js';
import { storageContract } from './storage.contract.js';

/** A pid that is not running: past the kernel's pid_max. */
const DEAD_PID = 4_194_304 + 17;

storageContract('local folder', async () => {
  const root = path.join(tempDir(), 'store');
  const storage = new LocalStorage(root);
  return {
    storage,
    async deadRunLeftover(_target, id) {
      mkdirSync(root, { recursive: true });
      writeFileSync(path.join(root, `.${id}.zip.${DEAD_PID}.partial`), 'half an archive');
    },
    async leftoversOf(target) {
      if (!existsSync(root)) return [];
      return readdirSync(root).filter((n) => n.startsWith(`.${target}_2`) && n.endsWith('.partial'));
    },
    async names() {
      return existsSync(root) ? readdirSync(root, { recursive: true }).map(String).sort() : [];
    },
    async staleLock(target) {
      mkdirSync(path.join(root, '.locks'), { recursive: true });
      const info = { pid: DEAD_PID, host: os.hostname(), startTicks: null, command: 'backup', since: new Date(0).toISOString() };
      writeFileSync(path.join(root, '.locks', `${target}.lock`), JSON.stringify(info));
    },
    async deadPidLock(target, space, ageMs = 0) {
      mkdirSync(path.join(root, '.locks'), { recursive: true });
      const touched = new Date(Date.now() - ageMs);
      const info = { pid: DEAD_PID, host: os.hostname(), space, startTicks: null, command: 'backup', since: touched.toISOString() };
      const file = path.join(root, '.locks', `${target}.lock`);
      writeFileSync(file, JSON.stringify(info));
      utimesSync(file, touched, touched);
    },
    async cleanup() {},
  };
});

describe('a folder lock while held', () => {
  it('is touched every 30 s, so that it never looks stale to another host or container', async () => {
    const root = path.join(tempDir(), 'store');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const lock = await acquireLock(root, 'crm', 'backup', new Date());
      const file = path.join(root, '.locks', 'crm.lock');
      const old = new Date(Date.now() - 10 * 60_000);
      utimesSync(file, old, old);
      vi.advanceTimersByTime(REFRESH_MS);
      await vi.waitFor(() => expect(statSync(file).mtimeMs).toBeGreaterThan(old.getTime() + 60_000), { timeout: 5000, interval: 20 });
      await lock.release();
      expect(existsSync(file)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
