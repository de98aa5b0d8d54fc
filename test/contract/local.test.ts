/** The storage contract for a local folder. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalStorage } from '../../src/storage/local.js';
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
    async deadPidLock(target, space) {
      mkdirSync(path.join(root, '.locks'), { recursive: true });
      const info = { pid: DEAD_PID, host: os.hostname(), space, startTicks: null, command: 'backup', since: new Date().toISOString() };
      writeFileSync(path.join(root, '.locks', `${target}.lock`), JSON.stringify(info));
    },
    async cleanup() {},
  };
});
