/**
 * The config's JSON Schema (`backupkit config schema`), generated from the zod schemas that
 * validate it, so that editors check and complete a config that names it in "$schema". Each
 * target is one of the drivers' schemas, told apart by `driver`; unknown keys are refused as they
 * are when a config loads. What JSON Schema cannot say (a duration's syntax, a cron expression, a
 * driver's own checks) is still checked by `backupkit config validate`.
 */
import { z } from 'zod';
import type { DriverRegistry } from '../core/driver.js';
import { TARGET_NAME } from '../core/ids.js';
import { compressionSchema, durationSchema, encryptionSchema, notifySchema, retentionSchema, targetSchema, topLevelSchema } from './schema.js';

export function configJsonSchema(drivers: DriverRegistry): Record<string, unknown> {
  const variants = drivers.names().map((name) => targetSchema(drivers.get(name)!).extend({ driver: z.literal(name) }));
  if (variants.length === 0) throw new Error('no drivers registered');
  const schema = topLevelSchema.extend({
    targets: z.record(z.string().regex(TARGET_NAME), z.discriminatedUnion('driver', variants as [(typeof variants)[number], ...typeof variants])),
  });
  // The shapes every target repeats are written once, under $defs.
  const shared = z.registry<{ id: string; description?: string }>();
  shared.add(durationSchema, { id: 'duration', description: '90s, 5m, 12h, 30d, 8w, 1y, or a number of seconds' });
  shared.add(retentionSchema, { id: 'retention' });
  shared.add(compressionSchema, { id: 'compression' });
  shared.add(encryptionSchema, { id: 'encryption' });
  shared.add(notifySchema, { id: 'notify' });
  const { $schema, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', metadata: shared });
  return { $schema, title: 'backupkit config', ...rest };
}
