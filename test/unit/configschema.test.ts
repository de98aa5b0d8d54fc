/**
 * `backupkit config schema`: the JSON Schema generated from the zod schemas that validate configs
 * accepts what the loader accepts (the shipped example, the contract's storages and notify) and
 * refuses what it refuses (unknown keys anywhere, an unknown driver, a driver's missing key).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/jsonschema.js';
import { resolveConfig } from '../../src/config/load.js';
import { createDriverRegistry } from '../../src/drivers/registry.js';
import { schemaErrors } from '../support/jsonschema.js';

const drivers = createDriverRegistry();
const schema = configJsonSchema(drivers);
const example = JSON.parse(readFileSync(new URL('../../backupkit.config.example.json', import.meta.url), 'utf8')) as Record<string, any>;
const loads = (raw: unknown) => {
  try {
    resolveConfig(raw, '/etc/bk/backupkit.config.json', { env: {}, drivers });
    return true;
  } catch {
    return false;
  }
};

describe('config schema', () => {
  it('is a 2020-12 schema whose targets are one of the drivers, told apart by "driver", with no unknown keys', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    const targets = (schema.properties as any).targets;
    expect(targets.propertyNames.pattern).toBe('^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$');
    const variants = targets.additionalProperties.oneOf as any[];
    expect(variants.map((v) => v.properties.driver.const).sort()).toEqual(drivers.names());
    expect(drivers.names()).toEqual(['django-dumpdata', 'mongo-json', 'mongodump', 'mysqldump', 'pg_dump', 'sqlite']);
    for (const variant of variants) {
      expect(variant.additionalProperties).toBe(false);
      expect(variant.required).toContain('driver');
      // The common keys are in every variant.
      for (const key of ['files', 'timeout', 'retention', 'storages', 'encryption', 'schedule', 'notify']) expect(Object.keys(variant.properties)).toContain(key);
    }
    const sqlite = variants.find((v) => v.properties.driver.const === 'sqlite');
    expect(sqlite.required).toEqual(expect.arrayContaining(['path', 'driver']));
  });

  it('accepts the shipped example and the contract\'s storages, encryption and notify', () => {
    expect(schemaErrors(schema, example)).toEqual([]);
    const full = {
      $schema: './backupkit.schema.json',
      storages: {
        local: { type: 'local', path: '/var/backups/acme', retention: { keepLast: 3 } },
        offsite: { type: 's3', bucket: 'acme-backups', prefix: 'prod/', region: 'eu-central-1', endpoint: '${S3_ENDPOINT:-}', forcePathStyle: false },
      },
      defaults: {
        storages: ['local', 'offsite'],
        encryption: { recipientsFile: '/etc/backupkit/recipients.txt' },
        schedule: '0 2 * * *',
        maxAge: '25h',
        notify: { on: ['failure'], webhook: { url: 'https://hooks.example.com/backups' }, ping: { url: 'https://hc-ping.example.com/2f1c' } },
      },
      daemon: { listen: '127.0.0.1:9180' },
      targets: { crm: { driver: 'pg_dump', url: '${DATABASE_URL:-postgres://localhost/crm}', storages: ['offsite'], schedule: '0 */6 * * *', maxAge: 90000 } },
    };
    expect(schemaErrors(schema, full)).toEqual([]);
  });

  for (const [what, change, where] of [
    ['an unknown top-level key', (c: any) => (c.target = {}), 'unknown key target'],
    ['an unknown key in defaults', (c: any) => (c.defaults.retension = {}), 'unknown key retension'],
    ['an unknown key in a target', (c: any) => (c.targets.crm.tabels = ['x']), 'unknown key tabels'],
    ['a key of another driver', (c: any) => (c.targets.demo.uri = 'mongodb://h/x'), 'unknown key uri'],
    ['an unknown driver', (c: any) => (c.targets.crm.driver = 'pgdump'), 'fits none of oneOf'],
    ['a missing required key', (c: any) => delete c.targets.demo.path, 'missing required path'],
    ['a wrong type', (c: any) => (c.defaults.compression.level = 'high'), 'expected integer'],
    ['a bad target name', (c: any) => (c.targets['bad name'] = { driver: 'sqlite', path: 'x' }), 'does not match'],
  ] as const) {
    it(`refuses ${what}, as the loader does`, () => {
      const config = structuredClone(example);
      change(config);
      expect(schemaErrors(schema, config).join('\n')).toContain(where);
      expect(loads(config)).toBe(false);
    });
  }
});
