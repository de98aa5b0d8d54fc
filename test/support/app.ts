/** App-layer dependencies for tests that drive app/ directly, with a clock they control. */
import path from 'node:path';
import type { AppDeps } from '../../src/app/deps.js';
import { noProgress } from '../../src/app/deps.js';
import { type Config, resolveConfig } from '../../src/config/load.js';
import type { Logger } from '../../src/core/driver.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { createRunner } from '../../src/drivers/spawn.js';
import { LocalStorage } from '../../src/storage/local.js';
import { StorageSet, toPolicy } from '../../src/storage/registry.js';
import { StateDir } from '../../src/storage/state.js';

export interface TestClock {
  now: () => Date;
  set(iso: string): void;
}

export function testClock(start: string): TestClock {
  let current = new Date(start);
  return { now: () => new Date(current), set: (iso) => (current = new Date(iso)) };
}

export const quietLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The config's storages, all local (configs with S3 storages build theirs with createStorages). */
function localStorages(config: Config): StorageSet {
  return new StorageSet(
    config.storages.map((st) => {
      if (st.type !== 'local') throw new Error(`appDeps: storage ${st.name} is not local`);
      return new LocalStorage(st.path, st.name, toPolicy(st.retention));
    }),
  );
}

export function appDeps(configFile: string, raw: unknown, clock: TestClock, log: Logger = quietLog): AppDeps {
  const config = resolveConfig(raw, configFile, { env: process.env, drivers: createDriverRegistry() });
  return {
    config,
    storages: localStorages(config),
    state: new StateDir(config.stateDir!),
    runner: createRunner(log, (t) => t),
    log,
    now: clock.now,
    env: process.env,
    cwd: path.dirname(configFile),
    signal: new AbortController().signal,
    progress: noProgress,
    host: 'test-host',
    version: '0.0.0-test',
  };
}
