/** App-layer dependencies for tests that drive app/ directly, with a clock they control. */
import type { AppDeps } from '../../src/app/deps.js';
import { noProgress } from '../../src/app/deps.js';
import { resolveConfig } from '../../src/config/load.js';
import type { Logger } from '../../src/core/driver.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { createRunner } from '../../src/drivers/spawn.js';
import { LocalStorage } from '../../src/storage/local.js';

export interface TestClock {
  now: () => Date;
  set(iso: string): void;
}

export function testClock(start: string): TestClock {
  let current = new Date(start);
  return { now: () => new Date(current), set: (iso) => (current = new Date(iso)) };
}

export const quietLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function appDeps(configFile: string, raw: unknown, clock: TestClock, log: Logger = quietLog): AppDeps {
  const config = resolveConfig(raw, configFile, { env: process.env, drivers: createDriverRegistry() });
  return {
    config,
    storage: new LocalStorage(config.storagePath),
    runner: createRunner(log, (t) => t),
    log,
    now: clock.now,
    env: process.env,
    signal: new AbortController().signal,
    progress: noProgress,
    host: 'test-host',
    version: '0.0.0-test',
  };
}
