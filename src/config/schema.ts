/** The config's common shape; each driver adds its own keys (see Driver.optionsSchema). */
import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

export const durationSchema = z.union([
  z.number().nonnegative(),
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

export const defaultsSchema = z.strictObject({
  timeout: durationSchema.optional(),
  compression: compressionSchema.optional(),
  retention: retentionSchema.optional(),
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
};

export const topLevelSchema = z.strictObject({
  $schema: z.string().optional(),
  storage: storageSchema.optional(),
  defaults: defaultsSchema.optional(),
  targets: z.record(z.string(), z.record(z.string(), z.unknown())),
});
