/**
 * A small JSON Schema (2020-12) checker for the keywords `backupkit config schema` uses: enough to
 * tell whether a document fits, and where not. Unknown keywords fail loudly, so the schema cannot
 * grow a keyword this checker silently ignores.
 */
type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema', 'title', 'description', '$defs', '$ref', 'type', 'properties', 'required', 'additionalProperties', 'propertyNames',
  'pattern', 'enum', 'const', 'oneOf', 'anyOf', 'items', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems',
]);

export function schemaErrors(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  check(root, root, value, '', errors);
  return errors;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function check(root: Schema, schema: Schema, value: unknown, at: string, errors: string[]): void {
  for (const key of Object.keys(schema)) if (!KNOWN.has(key)) throw new Error(`${at || '/'}: keyword ${key} is not supported by this checker`);
  const fail = (message: string) => errors.push(`${at || '/'}: ${message}`);
  if (typeof schema.$ref === 'string') {
    const name = /^#\/\$defs\/(.+)$/.exec(schema.$ref)?.[1];
    const target = name ? (root.$defs as Record<string, Schema> | undefined)?.[name] : undefined;
    if (!target) throw new Error(`${at}: unresolvable $ref ${schema.$ref}`);
    check(root, target, value, at, errors);
  }
  if (typeof schema.type === 'string') {
    const actual = typeOf(value);
    if (!(actual === schema.type || (schema.type === 'number' && actual === 'integer'))) {
      fail(`expected ${schema.type}, got ${actual}`);
      return;
    }
  }
  if (schema.const !== undefined && value !== schema.const) fail(`expected ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) fail(`expected one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) fail(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) fail(`longer than ${schema.maxLength}`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`does not match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail(`above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) fail(`more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((item, i) => check(root, schema.items as Schema, item, `${at}/${i}`, errors));
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in object)) fail(`missing required ${key}`);
    for (const [key, item] of Object.entries(object)) {
      if (schema.propertyNames) check(root, schema.propertyNames as Schema, key, `${at}/${key} (name)`, errors);
      if (properties[key]) check(root, properties[key]!, item, `${at}/${key}`, errors);
      else if (schema.additionalProperties === false) fail(`unknown key ${key}`);
      else if (typeof schema.additionalProperties === 'object') check(root, schema.additionalProperties as Schema, item, `${at}/${key}`, errors);
    }
  }
  for (const [keyword, exactlyOne] of [['oneOf', true], ['anyOf', false]] as const) {
    const options = schema[keyword] as Schema[] | undefined;
    if (!options) continue;
    const results = options.map((option) => {
      const found: string[] = [];
      check(root, option, value, at, found);
      return found;
    });
    const passing = results.filter((r) => r.length === 0).length;
    if (passing === 0) fail(`fits none of ${keyword}: ${results.map((r) => r[0]).join(' | ')}`);
    else if (exactlyOne && passing > 1) fail(`fits ${passing} of oneOf`);
  }
}
