/**
 * Finding, loading and validating the config (contract: "Config"). The result is fully typed and
 * resolved: env references filled, durations in milliseconds, paths absolute against the config
 * file's folder. Every problem is a ConfigError (exit 2) naming the file and the key path.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import type { z } from 'zod';
import type { Driver, DriverRegistry } from '../core/driver.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError, errorMessage } from '../core/errors.js';
import { TARGET_NAME } from '../core/ids.js';
import { suggest } from '../core/suggest.js';
import { interpolate } from './interpolate.js';
import { formatPath } from './paths.js';
import { type EncryptionRules, type RetentionRules, targetSchema, topLevelSchema } from './schema.js';
import { type RecipientCheck, type TargetEncryption, loadRecipientCheck, mentionsEncryption, resolveEncryption } from './encryption.js';
import { type DaemonConfig, type NotifyConfig, type TargetOperations, resolveDaemon, resolveNotify, resolveOperations } from './operations.js';
import { checkTimezone } from './schedule.js';
import { type EnvFill, collectSecrets, redact } from './secrets.js';
import { describeIssues } from './validate.js';

export interface TargetConfig extends TargetOperations {
  name: string;
  driver: Driver;
  /** The driver's own options, validated by its schema, paths resolved. */
  options: Record<string, unknown>;
  files: string[];
  timeoutMs: number;
  compressionLevel: number;
  retention: RetentionRules | undefined;
  bin: string | undefined;
  /** The names of the storages it writes to, in config order; never empty. */
  storages: string[];
  /** age encryption of its archives, if any. */
  encryption: TargetEncryption | undefined;
  /** Differential file backups, if configured. */
  incremental: { fullEveryMs: number; compare: 'metadata' | 'content' } | undefined;
}

export type StorageConfig =
  | { name: string; type: 'local'; path: string; retention: RetentionRules | undefined }
  | {
      name: string;
      type: 's3';
      bucket: string;
      prefix: string;
      region: string | undefined;
      endpoint: string | undefined;
      forcePathStyle: boolean;
      accessKeyId: string | undefined;
      secretAccessKey: string | undefined;
      sessionToken: string | undefined;
      partSize: number | undefined;
      queueSize: number | undefined;
      retention: RetentionRules | undefined;
    };

export interface Config {
  file: string;
  dir: string;
  /** Every storage, in config order (`storage: {path}` is one local storage named "local"). */
  storages: StorageConfig[];
  /** history.jsonl and scratch files: the first local storage's folder, else undefined (the caller picks). */
  stateDir: string | undefined;
  targets: Map<string, TargetConfig>;
  /** The zone schedules are read in (defaults.timezone); undefined: the system's. */
  timezone: string | undefined;
  daemon: DaemonConfig;
  /** defaults.notify: for runs that name no target, and `notify test`. */
  notify: NotifyConfig | undefined;
  /** Every secret value in the config, for redaction. */
  secrets: Set<string>;
}

export const DEFAULT_TIMEOUT_MS = 60 * 60 * 1000;
const DEFAULT_COMPRESSION_LEVEL = 6;

export interface LoadOptions {
  /** `-c <file>`; without it, a cosmiconfig search from `cwd`. */
  file: string | undefined;
  cwd: string;
  env: NodeJS.ProcessEnv;
  drivers: DriverRegistry;
  /** The clock for defaults that depend on it (a schedule's default maxAge). */
  now?: () => Date;
  /** Checks age recipients; needed by a config that encrypts (loadConfig loads it then). */
  checkRecipient?: RecipientCheck;
}

export async function loadConfig(options: LoadOptions): Promise<Config> {
  const explorer = cosmiconfig('backupkit', {
    searchStrategy: 'global',
    searchPlaces: [
      'package.json',
      'backupkit.config.json',
      'backupkit.config.yaml',
      'backupkit.config.yml',
      'backupkit.config.js',
      'backupkit.config.mjs',
      'backupkit.config.cjs',
      '.backupkitrc',
      '.backupkitrc.json',
      '.backupkitrc.yaml',
    ],
    stopDir: options.cwd,
  });
  let found: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  if (options.file) {
    const file = path.resolve(options.cwd, options.file);
    if (!existsSync(file)) {
      throw new ConfigError(file, ['the config file does not exist'], {
        hint: 'Check the path given to -c/--config.',
      });
    }
    try {
      found = await explorer.load(file);
    } catch (error) {
      throw new ConfigError(file, [`cannot be read: ${firstLine(errorMessage(error))}`], { cause: error });
    }
  } else {
    try {
      found = await explorer.search(options.cwd);
    } catch (error) {
      throw new ConfigError(undefined, [`the config file cannot be read: ${firstLine(errorMessage(error))}`], {
        cause: error,
      });
    }
    if (!found) {
      throw new ConfigError(undefined, [`no config file found in ${options.cwd}`], {
        hint: 'Create backupkit.config.json (see backupkit.config.example.json), or pass -c <file>.',
      });
    }
  }
  if (!found || found.isEmpty || found.config === undefined || found.config === null) {
    throw new ConfigError(found?.filepath, ['the config file is empty']);
  }
  const checkRecipient = mentionsEncryption(found.config) ? await loadRecipientCheck() : undefined;
  return resolveConfig(found.config, found.filepath, { ...options, checkRecipient });
}

export function resolveConfig(raw: unknown, file: string, options: Omit<LoadOptions, 'file' | 'cwd'>): Config {
  const dir = path.dirname(file);
  const problems: string[] = [];
  const fills: EnvFill[] = [];
  const filled = interpolate(raw, options.env, problems, fills);
  if (problems.length > 0) throw new ConfigError(file, problems);
  // Known before validation: a problem that quotes a value never shows a secret.
  const secrets = collectSecrets(filled, fills);

  const top = topLevelSchema.safeParse(filled, { reportInput: true });
  if (!top.success) problems.push(...describeIssues(topLevelSchema, top.error.issues, [], filled));
  // Targets are checked even when something else is wrong, so that one run shows every problem.
  const rawTargets = isPlainObject(filled) && isPlainObject(filled.targets) ? filled.targets : {};
  const defaults = top.success ? top.data.defaults : undefined;
  const storages = top.success ? resolveStorages(top.data, dir, problems) : [];
  const storageNames = storages.map((st) => st.name);
  const timezone = defaults?.timezone;
  const timezoneProblem = timezone === undefined ? undefined : checkTimezone(timezone);
  if (timezoneProblem) problems.push(`defaults.timezone: ${timezoneProblem}`);
  const zone = timezoneProblem ? undefined : timezone;
  const now = options.now?.() ?? new Date();
  const defaultStorages = defaults?.storages ? checkStorageNames(defaults.storages, storageNames, ['defaults', 'storages'], problems) : storageNames;

  const targets = new Map<string, TargetConfig>();
  for (const [name, rawTarget] of Object.entries(rawTargets)) {
    if (!isPlainObject(rawTarget)) continue; // already reported by the top-level schema
    const target = resolveTarget(name, rawTarget, dir, options.drivers, problems, {
      timeout: defaults?.timeout,
      compressionLevel: defaults?.compression?.level,
      retention: defaults?.retention,
      encryption: defaults?.encryption,
    }, options.checkRecipient);
    if (target) {
      Object.assign(target, resolveOperations(rawTarget, defaults, zone, ['targets', name], problems, now));
      const ownStorages = rawTarget.storages;
      target.storages = Array.isArray(ownStorages) ? checkStorageNames(ownStorages as string[], storageNames, ['targets', name, 'storages'], problems) : defaultStorages;
      targets.set(name, target);
    }
  }
  const daemon = resolveDaemon(top.success ? top.data.daemon : undefined, problems);
  const notify = defaults?.notify ? resolveNotify(defaults.notify, 'defaults.notify', problems) : undefined;
  if (problems.length > 0 || !top.success) throw new ConfigError(file, [...new Set(problems.map((p) => redact(p, secrets)))]);
  return {
    file,
    dir,
    storages,
    stateDir: storages.find((st) => st.type === 'local')?.path as string | undefined,
    targets,
    timezone: zone,
    daemon,
    notify,
    secrets,
  };
}

function resolveTarget(
  name: string,
  raw: Record<string, unknown>,
  dir: string,
  drivers: DriverRegistry,
  problems: string[],
  defaults: { timeout: string | number | undefined; compressionLevel: number | undefined; retention: RetentionRules | undefined; encryption: EncryptionRules | undefined },
  checkRecipient: RecipientCheck | undefined,
): TargetConfig | undefined {
  const at = (...keys: (string | number)[]) => formatPath(['targets', name, ...keys]);
  if (!TARGET_NAME.test(name)) {
    problems.push(`${at()}: invalid target name; use letters, digits, "_" and "-" (up to 64, starting with a letter or digit)`);
    return undefined;
  }
  const driverName = raw.driver;
  if (typeof driverName !== 'string') {
    problems.push(`${at('driver')}: required; one of: ${drivers.names().join(', ')}`);
    return undefined;
  }
  const driver = drivers.get(driverName);
  if (!driver) {
    const hint = suggest(driverName, drivers.names());
    problems.push(
      `${at('driver')}: unknown driver "${driverName}"${hint ? ` (did you mean "${hint}"?)` : ''}; known drivers: ${drivers.names().join(', ')}`,
    );
    return undefined;
  }
  const schema = targetSchema(driver);
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    problems.push(...describeIssues(schema as z.ZodType, parsed.error.issues, ['targets', name], raw));
    return undefined;
  }
  const { driver: _driver, files, timeout, compression, retention, bin, storages: _storages, encryption, schedule: _s, verifySchedule: _v, verifyDeep: _d, maxAge: _m, notify: _n, incremental, ...options } = parsed.data as Record<string, unknown> & {
    files?: string[];
    timeout?: string | number;
    compression?: { level?: number };
    retention?: RetentionRules;
    bin?: string;
    encryption?: EncryptionRules;
    incremental?: { fullEvery: string | number; compare?: 'metadata' | 'content' };
  };
  for (const problem of driver.check?.(options) ?? []) problems.push(`${at()}.${problem}`);
  for (const key of driver.pathKeys) {
    const value = options[key];
    if (typeof value === 'string') options[key] = path.resolve(dir, value);
  }
  return {
    name,
    driver,
    options,
    files: (files ?? []).map((f) => path.resolve(dir, f)),
    timeoutMs: parseDuration(timeout ?? defaults.timeout ?? DEFAULT_TIMEOUT_MS / 1000)!,
    compressionLevel: compression?.level ?? defaults.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL,
    retention: retention ?? defaults.retention,
    bin: bin === undefined ? undefined : path.resolve(dir, bin),
    storages: [],
    schedule: undefined,
    verifySchedule: undefined,
    verifyDeep: false,
    maxAgeMs: undefined,
    notify: undefined,
    encryption: resolveEncryption(encryption ?? defaults.encryption, dir, formatPath(encryption ? ['targets', name, 'encryption'] : ['defaults', 'encryption']), problems, checkRecipient),
    incremental: incremental && { fullEveryMs: parseDuration(incremental.fullEvery)!, compare: incremental.compare ?? 'metadata' },
  };
}

type TopLevel = z.infer<typeof topLevelSchema>;

/** `storages`, or the single local `storage`, or ./backups; both given is a config error. */
function resolveStorages(top: TopLevel, dir: string, problems: string[]): StorageConfig[] {
  if (top.storage && top.storages) {
    problems.push('storage and storages: give one of them ("storage": {"path"} is one local storage named "local")');
    return [];
  }
  if (!top.storages) return [{ name: 'local', type: 'local', path: path.resolve(dir, top.storage?.path ?? './backups'), retention: undefined }];
  const entries = Object.entries(top.storages);
  if (entries.length === 0) problems.push('storages: define at least one storage, e.g. {"local": {"type": "local", "path": "./backups"}}');
  const blank = (value: string | undefined) => (value === undefined || value === '' ? undefined : value);
  return entries.map(([name, st]): StorageConfig => {
    if (st.type === 'local') return { name, type: 'local', path: path.resolve(dir, st.path), retention: st.retention };
    const prefix = blank(st.prefix) ?? '';
    const endpoint = blank(st.endpoint);
    if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint)) problems.push(`${formatPath(['storages', name, 'endpoint'])}: expected an http:// or https:// URL, got "${endpoint}"`);
    const accessKeyId = blank(st.accessKeyId);
    const secretAccessKey = blank(st.secretAccessKey);
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      problems.push(`${formatPath(['storages', name, accessKeyId ? 'secretAccessKey' : 'accessKeyId'])}: required with ${accessKeyId ? 'accessKeyId' : 'secretAccessKey'} (or leave both out to use the AWS SDK's credentials chain)`);
    }
    return {
      name,
      type: 's3',
      bucket: st.bucket,
      prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
      region: blank(st.region),
      endpoint,
      forcePathStyle: st.forcePathStyle ?? false,
      accessKeyId,
      secretAccessKey,
      sessionToken: blank(st.sessionToken),
      partSize: st.partSize,
      queueSize: st.queueSize,
      retention: st.retention,
    };
  });
}

function checkStorageNames(names: string[], known: string[], at: (string | number)[], problems: string[]): string[] {
  for (const [index, name] of names.entries()) {
    if (known.includes(name)) continue;
    const hint = suggest(name, known);
    problems.push(`${formatPath([...at, index])}: unknown storage "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; storages: ${known.join(', ') || '(none)'}`);
  }
  return [...new Set(names)].filter((n) => known.includes(n));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
