/**
 * Generated bad configs: wrong types, unknown keys, unset `${...}` references, huge values, deep
 * nesting and odd target names, each grafted onto a valid config. Every one must be refused as a
 * ConfigError (exit 2) whose message names the file and the key path at fault; through the CLI
 * (a sample, `config validate` and `list`), exit 2 with that message and never a stack trace.
 * Fixed seeds, bounded runs.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '../../src/config/load.js';
import { ConfigError, ExitCode, exitCodeOf } from '../../src/core/errors.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { runCli, tempDir } from '../support/cli.js';
import { makeSqlite } from '../support/sqlitedb.js';

const drivers = createDriverRegistry();
const FILE = '/etc/backupkit/fuzz.config.json';
const ENV = { HOME: '/root', DATABASE_URL: 'postgres://u:pw@db:5432/crm' };
const SEED = 20261121;
/** Bounded in time as well as in runs: a slow machine checks fewer inputs rather than time out. */
const bounded = (numRuns: number, ms: number) => ({ seed: SEED, numRuns, plugins: [fc.interruptAfterTimeLimit(ms)] });

function baseConfig(): Record<string, any> {
  return {
    storage: { path: './store' },
    defaults: { timeout: '5m', compression: { level: 6 }, retention: { keepLast: 7 } },
    targets: {
      app: { driver: 'sqlite', path: './app.sqlite', files: ['./uploads'] },
      crm: { driver: 'pg_dump', url: '${DATABASE_URL}', tables: ['users', 'orders'], retention: { keepDaily: 7 } },
    },
  };
}

/** A mutation: what it does to the config, and the key path the error must name. */
interface Mutation {
  keyPath: string;
  /** False when an earlier mutation left no object where this one would go. */
  apply(config: Record<string, any>): boolean | void;
}

function setAt(config: Record<string, any>, keys: readonly (string | number)[], value: unknown): boolean {
  let node = config;
  for (const key of keys.slice(0, -1)) {
    node = Object.hasOwn(node, key) ? node[key] : undefined;
    if (typeof node !== 'object' || node === null) return false;
  }
  Object.defineProperty(node, keys.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
  return true;
}

function formatKeys(keys: readonly (string | number)[]): string {
  return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

const anyJson = fc.jsonValue({ maxDepth: 2 });
const notString = anyJson.filter((v) => typeof v !== 'string');
const notNumber = anyJson.filter((v) => typeof v !== 'number');
const notDuration = anyJson.filter((v) => typeof v !== 'string' && typeof v !== 'number');
const notArray = anyJson.filter((v) => !Array.isArray(v));
const notObject = anyJson.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v));

/** Leaves of the base config, each with values its type can never take. */
const wrongType: fc.Arbitrary<Mutation> = fc
  .oneof(
    fc.tuple(fc.constant(['storage', 'path']), notString),
    fc.tuple(fc.constant(['defaults', 'timeout']), notDuration),
    fc.tuple(fc.constant(['defaults', 'compression', 'level']), fc.oneof(notNumber, fc.integer({ min: 10 }), fc.integer({ max: -1 }), fc.double({ min: 0.1, max: 8.9, noNaN: true }).filter((d) => !Number.isInteger(d)))),
    fc.tuple(fc.constant(['defaults', 'retention', 'keepLast']), fc.oneof(notNumber, fc.integer({ max: -1 }))),
    fc.tuple(fc.constant(['defaults', 'retention']), notObject),
    fc.tuple(fc.constant(['targets', 'app', 'path']), notString),
    fc.tuple(fc.constant(['targets', 'app', 'files']), notArray),
    fc.tuple(fc.constant(['targets', 'app', 'files', 0]), notString),
    fc.tuple(fc.constant(['targets', 'crm', 'tables', 1]), notString),
    fc.tuple(fc.constant(['targets', 'crm', 'url']), notString),
    fc.tuple(fc.constant(['targets', 'crm']), notObject),
    fc.tuple(fc.constant(['targets', 'app', 'driver']), notString),
  )
  .map(([keys, value]) => ({ keyPath: formatKeys(keys), apply: (config) => setAt(config, keys, value) }));

/** Every key the schemas know at any level: an unknown key must be none of them. */
const KNOWN = new Set(
  [
    '$schema storage storages defaults daemon targets path encryption schedule verifySchedule verifyDeep maxAge timezone notify timeout',
    'compression retention level keepLast keepDaily keepWeekly keepMonthly keepYearly keepWithin driver files bin emptyCheck url host',
    'port user password database format tables excludeTables listen listenPublic concurrency',
  ]
    .join(' ')
    .split(' '),
);
const oddKey = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', ' path', 'Path', 'targets ', 'key.with.dots', 'ключ', '💥', '${HOME}'),
).filter((key) => !KNOWN.has(key));

const unknownKey: fc.Arbitrary<Mutation> = fc
  .tuple(fc.constantFrom<(string | number)[]>([], ['storage'], ['defaults'], ['defaults', 'compression'], ['defaults', 'retention'], ['targets', 'app'], ['targets', 'crm'], ['targets', 'crm', 'retention']), oddKey, anyJson)
  .map(([at, key, value]) => ({ keyPath: formatKeys([...at, key]), apply: (config) => setAt(config, [...at, key], value) }));

/** An unset variable, without a default, anywhere in a string the config holds. */
const unsetVariable: fc.Arbitrary<Mutation> = fc
  .tuple(
    fc.constantFrom<(string | number)[]>(['storage', 'path'], ['defaults', 'timeout'], ['targets', 'app', 'path'], ['targets', 'app', 'files', 0], ['targets', 'crm', 'url'], ['targets', 'crm', 'tables', 0]),
    fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,20}$/).filter((name) => !(name in ENV) && !(name in process.env)),
    fc.string({ maxLength: 8 }),
    fc.string({ maxLength: 8 }),
  )
  .map(([keys, name, before, after]) => ({ keyPath: formatKeys(keys), apply: (config) => setAt(config, keys, `${before}\${${name}}${after}`) }));

/** Names outside ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, with an otherwise valid target. */
const oddTargetName: fc.Arbitrary<Mutation> = fc
  .oneof(
    fc.constantFrom('', '_app', '-app', 'app.db', 'app/db', '../app', 'app db', 'àpp', '__proto__', 'a'.repeat(65), 'x'.repeat(5000), '\u0000', 'app\n'),
    fc.string({ minLength: 1, maxLength: 80 }).filter((name) => !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(name)),
  )
  .map((name) => ({ keyPath: formatKeys(['targets', name]), apply: (config) => setAt(config, ['targets', name], { driver: 'sqlite', path: './other.sqlite' }) }));

/** Values too large for their key: numbers, durations that overflow, long names, long lists. */
const hugeValue: fc.Arbitrary<Mutation> = fc
  .oneof(
    fc.tuple(fc.constant(['defaults', 'compression', 'level']), fc.constantFrom(1e6, 1e308, Number.MAX_SAFE_INTEGER)),
    fc.tuple(fc.constant(['defaults', 'retention', 'keepLast']), fc.constantFrom(1e20, 1e308)),
    fc.tuple(fc.constant(['defaults', 'timeout']), fc.integer({ min: 310, max: 1000 }).map((n) => '9'.repeat(n))),
    fc.tuple(fc.constant(['defaults', 'timeout']), fc.constantFrom(1e306, 1e308, Number.MAX_VALUE)),
    fc.tuple(fc.constant(['targets', 'app', 'timeout']), fc.integer({ min: 310, max: 1000 }).map((n) => `${'9'.repeat(n)}d`)),
    fc.tuple(fc.constant(['targets', 'app', 'maxAge']), fc.integer({ min: 310, max: 1000 }).map((n) => `${'9'.repeat(n)}h`)),
    fc.tuple(fc.constant(['targets', 'app', 'driver']), fc.integer({ min: 1000, max: 100_000 }).map((n) => 's'.repeat(n))),
    fc.tuple(fc.constant(['targets', 'app', 'files']), fc.integer({ min: 1000, max: 20_000 }).map((n) => Array.from({ length: n }, () => 7))),
    fc.tuple(fc.constant(['daemon', 'concurrency']), fc.constantFrom(65, 1e9, 1e308)),
  )
  .map(([keys, value]) => ({
    keyPath: formatKeys(keys),
    apply: (config) => {
      if (keys[0] === 'daemon') config.daemon = {};
      return setAt(config, keys, value);
    },
  }));

/** A value nested hundreds or thousands of levels deep, where a string list or a key belongs. */
const deepNesting: fc.Arbitrary<Mutation> = fc
  .tuple(fc.constantFrom<(string | number)[]>(['targets', 'app', 'files'], ['targets', 'app', 'deep'], ['defaults', 'retention'], ['storage']), fc.integer({ min: 100, max: 20_000 }), fc.boolean())
  .map(([keys, depth, arrays]) => ({
    keyPath: formatKeys(keys),
    apply: (config) => {
      let value: unknown = 'leaf';
      for (let i = 0; i < depth; i++) value = arrays ? [value] : { deeper: value };
      return setAt(config, keys, value);
    },
  }));

/** A connection string whose user, password or database holds a "%" that decodes to nothing. */
const badEscape: fc.Arbitrary<Mutation> = fc
  .tuple(
    fc.constantFrom(['pg_dump', 'url', 'postgres'], ['mysqldump', 'url', 'mysql'], ['mongodump', 'uri', 'mongodb'], ['mongo-json', 'uri', 'mongodb']),
    fc.constantFrom('%zz', '%', '%E0%A4%A', '%ff', '100%'),
    fc.constantFrom('user', 'password', 'database'),
  )
  .map(([[driver, key, scheme], bad, where]) => {
    const url = where === 'user' ? `${scheme}://${bad}:pw@db.example.com/shop` : where === 'password' ? `${scheme}://u:${bad}@db.example.com/shop` : `${scheme}://u:pw@db.example.com/${bad}`;
    return { keyPath: formatKeys(['targets', 'db2', key!]), apply: (config) => setAt(config, ['targets', 'db2'], { driver, [key!]: url, ...(scheme === 'mongodb' ? { database: 'shop' } : {}) }) };
  });

const mutation = fc
  .oneof(wrongType, unknownKey, unsetVariable, oddTargetName, hugeValue, deepNesting, badEscape)
  // A counterexample reads as where the config was changed.
  .map((m) => Object.assign(m, { [fc.toStringMethod]: () => `a bad value at ${m.keyPath.slice(0, 120)}` }));

function resolve(config: unknown) {
  return resolveConfig(config, FILE, { env: ENV, drivers });
}

function refusal(config: unknown): ConfigError {
  try {
    resolve(config);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`not a ConfigError: ${(error as Error)?.stack ?? String(error)}`);
  }
  throw new Error('the config was accepted');
}

describe('bad configs', () => {
  it('the base config the mutations start from is valid', () => {
    expect([...resolve(baseConfig()).targets.keys()]).toEqual(['app', 'crm']);
  });

  it('each mutation is refused with a ConfigError naming the file and the key path', () => {
    fc.assert(
      fc.property(mutation, (m) => {
        const config = baseConfig();
        m.apply(config);
        const error = refusal(config);
        expect(exitCodeOf(error)).toBe(ExitCode.usage);
        expect(error.message.startsWith(`${FILE}: `)).toBe(true);
        expect(error.message).toContain(m.keyPath);
      }),
      bounded(200, 30_000),
    );
  }, 60_000);

  it('several mutations at once: refused, naming at least one of the key paths', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 2, maxLength: 4 }), (ms) => {
        const config = baseConfig();
        const applied = ms.filter((m) => m.apply(config) !== false);
        const error = refusal(config);
        expect(error.message.startsWith(`${FILE}: `)).toBe(true);
        expect(applied.some((m) => error.message.includes(m.keyPath))).toBe(true);
      }),
      bounded(150, 30_000),
    );
  }, 60_000);

  it('a config file cut short or garbled is refused naming the file', async () => {
    const dir = tempDir();
    const text = JSON.stringify(baseConfig(), null, 2);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: text.length - 2 }), fc.string({ maxLength: 4 }), async (cut, garbage) => {
        const broken = text.slice(0, cut) + garbage;
        let parsed = true;
        try {
          JSON.parse(broken);
        } catch {
          parsed = false;
        }
        fc.pre(!parsed);
        const file = path.join(dir, `broken-${n++}.json`);
        writeFileSync(file, broken);
        const error = await loadConfig({ file, cwd: dir, env: ENV, drivers }).then(
          () => new Error('accepted'),
          (e: unknown) => e as Error,
        );
        expect(error).toBeInstanceOf(ConfigError);
        expect(error.message.startsWith(`${file}: `)).toBe(true);
      }),
      bounded(100, 30_000),
    );
  }, 60_000);
});

describe('large values that are valid', () => {
  it('a timeout longer than a timer can wait (30d, 1y) does not cut a backup short', async () => {
    const dir = tempDir();
    makeSqlite(path.join(dir, 'app.sqlite'), 5);
    const config = { storage: { path: './store' }, defaults: { timeout: '30d' }, targets: { month: { driver: 'sqlite', path: './app.sqlite' }, year: { driver: 'sqlite', path: './app.sqlite', timeout: '1y' } } };
    const file = path.join(dir, 'backupkit.config.json');
    writeFileSync(file, JSON.stringify(config));
    const result = await runCli(['-c', file, '--json', 'backup'], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.json().backups.map((b: { target: string }) => b.target)).toEqual(['month', 'year']);
  });
});

describe('bad configs through the CLI', () => {
  it('exit 2, the file and the key path in the message, never a stack trace', async () => {
    const dir = tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutation, fc.boolean(), fc.constantFrom(['config', 'validate'], ['list']), async (m, json, command) => {
        const config = baseConfig();
        m.apply(config);
        const file = path.join(dir, `config-${n++}.json`);
        writeFileSync(file, JSON.stringify(config));
        const result = await runCli(['-c', file, ...(json ? ['--json'] : []), ...command], { cwd: dir, env: ENV });
        expect(result.code, result.stderr).toBe(2);
        expect(result.stderr).not.toMatch(/\n\s+at |TypeError|RangeError/);
        const message: string = json ? result.json().error.message : result.stderr;
        expect(message).toContain(file);
        expect(message).toContain(m.keyPath.slice(0, 200));
      }),
      bounded(10, 45_000),
    );
  }, 90_000);
});
