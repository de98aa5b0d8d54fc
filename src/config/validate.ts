/** Turning zod issues into problems an operator can act on: key path, what is wrong, a suggestion. */
import type { z } from 'zod';
import { suggest } from '../core/suggest.js';
import { formatPath } from './paths.js';

export function describeIssues(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  prefix: (string | number)[] = [],
  input?: unknown,
): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(schema, issue.path as (string | number)[], input);
      for (const key of issue.keys) {
        const hint = suggest(key, known);
        problems.push(
          `${formatPath([...path, key])}: unknown key${hint ? ` (did you mean "${hint}"?)` : ''}` +
            (known.length > 0 && !hint ? `; expected one of: ${known.join(', ')}` : ''),
        );
      }
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      problems.push(`${formatPath(path)}: required ${issue.expected} is missing`);
    } else {
      problems.push(`${formatPath(path)}: ${issue.message.replace(/^Invalid input: /, '')}`);
    }
  }
  return problems;
}

type Def = {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
};

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/**
 * The keys an object schema accepts at `path`, unwrapping optionals, defaults, arrays and records.
 * A discriminated union (a storage's `type`) is narrowed to the member that `input`, the document
 * validated, names at that point; without one, its members' keys are all offered.
 */
export function keysAt(schema: z.ZodType, path: (string | number)[], input?: unknown): string[] {
  let current: z.ZodType | undefined = schema;
  let value = input;
  for (const key of [...path, undefined]) {
    while (current) {
      const def = defOf(current);
      if (def.innerType) current = def.innerType;
      else if (def.type === 'pipe' && def.in) current = def.in;
      else if (def.type === 'union' && def.options) current = unionMember(def, value);
      else break;
    }
    if (!current) return [];
    const def = defOf(current);
    if (key === undefined) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    value = value !== null && typeof value === 'object' ? (value as Record<string | number, unknown>)[key] : undefined;
    if (def.type === 'object' && def.shape) current = def.shape[String(key)];
    else if (def.type === 'array') current = def.element;
    else if (def.type === 'record') current = def.valueType;
    else return [];
  }
  return [];
}

/** The union member that `value`'s discriminator selects, or an object of every member's keys. */
function unionMember(def: Def, value: unknown): z.ZodType | undefined {
  const options = def.options!;
  const tag = def.discriminator && value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[def.discriminator] : undefined;
  if (def.discriminator && tag !== undefined) {
    const chosen = options.find((option) => defOf(option).shape?.[def.discriminator!]?.safeParse(tag).success);
    if (chosen) return chosen;
  }
  const shape = Object.assign({}, ...options.map((option) => defOf(option).shape ?? {})) as Record<string, z.ZodType>;
  return { _zod: { def: { type: 'object', shape } } } as unknown as z.ZodType;
}
