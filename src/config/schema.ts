/** The config's common shape; each driver adds its own keys (see Driver.optionsSchema). */
import { z } from 'zod';
import type { Driver } from '../core/driver.js';
import { parseDuration } from '../core/duration.js';

export const durationSchema = z.union([
  z.number().nonnegative().refine((n) => parseDuration(n) !== undefined, { message: 'too long to be a duration' }),
  z.string().refine((s) => parseDuration(s) !== undefined, {
    message: 'expected a duration such as 90s, 5m, 12h, 30d, 8w, 1y, or a number of seconds',
  }),
]);

const count = z.number().int().nonnegative();

export const retentionSchema = z.strictObject({
  keepLast: count.optional(),
  keepDaily: count.optional(),
  keepWeekly: count.optional(),
  keepMonthly: count.optional(),
  keepYearly: count.optional(),
  keepWithin: durationSchema.optional(),
});
export type RetentionRules = z.infer<typeof retentionSchema>;

export const compressionSchema = z.strictObject({
  level: z.number().int().min(0).max(9).optional(),
});

export const storageSchema = z.strictObject({
  path: z.string().min(1).optional(),
});

const STORAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const sizeSchema = z.number().int().positive();

export const localStorageSchema = z.strictObject({
  type: z.literal('local'),
  path: z.string().min(1),
  retention: retentionSchema.optional(),
});

export const s3StorageSchema = z.strictObject({
  type: z.literal('s3'),
  bucket: z.string().min(3).max(63),
  /** Keys start with it; a non-empty prefix gets a trailing "/" when it has none. */
  prefix: z.string().optional(),
  region: z.string().optional(),
  endpoint: z.string().optional(),
  forcePathStyle: z.boolean().optional(),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  sessionToken: z.string().optional(),
  /** Bytes per multipart part (at least 5 MiB, as S3 requires). */
  partSize: sizeSchema.min(5 * 1024 * 1024, { message: 'S3 parts are at least 5 MiB (5242880 bytes)' }).max(5 * 1024 * 1024 * 1024).optional(),
  /** Parts uploaded at once. */
  queueSize: sizeSchema.max(64).optional(),
  retention: retentionSchema.optional(),
});

export const storagesSchema = z.record(
  z.string().regex(STORAGE_NAME, { message: 'invalid storage name; use letters, digits, "_" and "-"' }),
  z.discriminatedUnion('type', [localStorageSchema, s3StorageSchema]),
);
export type StorageConfigInput = z.infer<typeof localStorageSchema> | z.infer<typeof s3StorageSchema>;

const storageNames = z.array(z.string().min(1)).min(1);

/** age encryption: public-key recipients (and/or a file of them), or a passphrase. */
export const encryptionSchema = z.strictObject({
  recipients: z.array(z.string()).optional(),
  recipientsFile: z.string().min(1).optional(),
  passphrase: z.string().min(1).optional(),
  /** Where restores find the private key when no --identity is given (hosts that restore unattended). */
  identityFile: z.string().min(1).optional(),
});
export type EncryptionRules = z.infer<typeof encryptionSchema>;

const notifyEvent = z.enum(['failure', 'success', 'always']);

/** Where to tell people about runs: SMTP email, a JSON webhook, healthchecks.io-style pings. */
export const notifySchema = z.strictObject({
  /** Which outcomes are sent (default: failure). */
  on: z.union([notifyEvent, z.array(notifyEvent).min(1)]).optional(),
  email: z
    .strictObject({
      /** smtp://user:password@host:587 or smtps://...:465 */
      url: z.string(),
      from: z.string().min(1),
      to: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    })
    .optional(),
  /** A blank url (an unset `${VAR:-}`) turns its channel off. */
  webhook: z.strictObject({ url: z.string() }).optional(),
  ping: z.strictObject({ url: z.string() }).optional(),
});
export type NotifyRules = z.infer<typeof notifySchema>;

/** The long-running mode's own settings. */
export const daemonSchema = z.strictObject({
  /** host:port for GET /healthz and /metrics; loopback unless `listenPublic` is true. */
  listen: z.string().min(1).optional(),
  /** Allow `listen` on an address other than loopback. */
  listenPublic: z.boolean().optional(),
  /** Targets that may run at once (default 1). */
  concurrency: z.number().int().min(1).max(64).optional(),
});

export const defaultsSchema = z.strictObject({
  encryption: encryptionSchema.optional(),
  schedule: z.string().min(1).optional(),
  verifySchedule: z.string().min(1).optional(),
  verifyDeep: z.boolean().optional(),
  maxAge: durationSchema.optional(),
  /** The zone schedules are read in (IANA name); default: the system's. */
  timezone: z.string().min(1).optional(),
  notify: notifySchema.optional(),
  timeout: durationSchema.optional(),
  compression: compressionSchema.optional(),
  retention: retentionSchema.optional(),
  storages: storageNames.optional(),
});

/** Differential file backups: a full backup every `fullEvery`, the changed files in between. */
export const incrementalSchema = z.strictObject({
  fullEvery: durationSchema,
  /** `content` also compares the SHA-256 of files whose size, mtime and mode agree (reads every file). */
  compare: z.enum(['metadata', 'content']).optional(),
});

/** Keys every target may carry, whatever its driver. */
export const commonTargetShape = {
  driver: z.string(),
  files: z.array(z.string().min(1)).optional(),
  timeout: durationSchema.optional(),
  compression: compressionSchema.optional(),
  retention: retentionSchema.optional(),
  /** The folder holding the driver's tools, searched before PATH. */
  bin: z.string().min(1).optional(),
  /** The storages this target writes to (default: defaults.storages, else every storage). */
  storages: storageNames.optional(),
  encryption: encryptionSchema.optional(),
  /** When the daemon backs the target up (cron, 5 fields or 6 with seconds). */
  schedule: z.string().min(1).optional(),
  /** When the daemon verifies the target's backups. */
  verifySchedule: z.string().min(1).optional(),
  /** Scheduled verifies restore into a scratch database (verify --deep). */
  verifyDeep: z.boolean().optional(),
  /** How old the newest good backup may be before doctor and /healthz call the target unhealthy. */
  maxAge: durationSchema.optional(),
  notify: notifySchema.optional(),
  incremental: incrementalSchema.optional(),
};

/** A target of `driver`: the driver's own keys and the common ones, nothing else. */
export function targetSchema(driver: Pick<Driver, 'optionsSchema'>) {
  return driver.optionsSchema.extend(commonTargetShape).strict();
}

export const topLevelSchema = z.strictObject({
  $schema: z.string().optional(),
  storage: storageSchema.optional(),
  storages: storagesSchema.optional(),
  defaults: defaultsSchema.optional(),
  daemon: daemonSchema.optional(),
  targets: z.record(z.string(), z.record(z.string(), z.unknown())),
});
