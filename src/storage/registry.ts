/**
 * The config's storages, built once in the CLI context and passed down. A target writes to its
 * own `storages` (else defaults.storages, else every storage); reads look in every storage,
 * narrowed by `--storage`.
 */
import type { Config, StorageConfig, TargetConfig } from '../config/load.js';
import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import type { RetentionPolicy } from '../core/retention.js';
import type { Storage } from '../core/storage.js';
import { suggest } from '../core/suggest.js';
import { LocalStorage } from './local.js';

export class StorageSet {
  constructor(
    readonly all: Storage[],
    /** The name given to --storage, if any. */
    readonly narrowedTo: string | undefined = undefined,
  ) {}

  get(name: string): Storage {
    const found = this.all.find((s) => s.name === name);
    if (found) return found;
    const known = this.all.map((s) => s.name);
    const hint = suggest(name, known);
    throw new UsageError(`unknown storage "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`, { hint: `Storages in the config: ${known.join(', ')}` });
  }

  /** Only `name` (for --storage). */
  only(name: string): StorageSet {
    return new StorageSet([this.get(name)], name);
  }

  /** The storages `target` writes to, in config order (narrowed by --storage). */
  forTarget(target: TargetConfig): Storage[] {
    const own = this.all.filter((s) => target.storages.includes(s.name));
    if (this.narrowedTo && own.length === 0) {
      throw new UsageError(`target ${target.name} does not use storage ${this.narrowedTo}`, { hint: `Its storages: ${target.storages.join(', ')}` });
    }
    return own;
  }

  /**
   * The storages whose locks a run on `target` takes when it does not write a backup (restore,
   * auto, clean): the target's own among these, else all of these.
   */
  lockSetFor(target: TargetConfig): Storage[] {
    const own = this.all.filter((s) => target.storages.includes(s.name));
    return own.length > 0 ? own : this.all;
  }

  /** Where messages say backups are: one location, or the names. */
  describe(): string {
    return this.all.length === 1 ? this.all[0]!.location : this.all.map((s) => `${s.name} (${s.location})`).join(', ');
  }
}

export async function createStorages(config: Pick<Config, 'storages'>): Promise<StorageSet> {
  return new StorageSet(await Promise.all(config.storages.map(createStorage)));
}

/** The AWS SDK is loaded only by configs that have an S3 storage: it doubles a command's start-up. */
export async function createStorage(config: StorageConfig): Promise<Storage> {
  const retention = toPolicy(config.retention);
  if (config.type === 'local') return new LocalStorage(config.path, config.name, retention);
  const { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, S3Storage } = await import('./s3.js');
  return new S3Storage({
    name: config.name,
    bucket: config.bucket,
    prefix: config.prefix,
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
    sessionToken: config.sessionToken,
    partSize: config.partSize ?? DEFAULT_PART_SIZE,
    queueSize: config.queueSize ?? DEFAULT_QUEUE_SIZE,
    retention,
  });
}

export function toPolicy(rules: StorageConfig['retention']): RetentionPolicy | undefined {
  if (!rules) return undefined;
  const { keepWithin, ...counts } = rules;
  return { ...counts, ...(keepWithin === undefined ? {} : { keepWithin: parseDuration(keepWithin) }) };
}
