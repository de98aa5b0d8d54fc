/** Turning zod issues into problems an operator can act on: key path, what is wrong, a suggestion. */
import type { z } from 'zod';
import { suggest } from '../core/suggest.js';
import { formatPath } from './paths.js';

export function describeIssues(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  prefix: (string | number)[] = [],
): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(schema, issue.path as (string | number)[]);
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

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType; in?: z.ZodType };

/** The keys an object schema accepts at `path`, unwrapping optionals, defaults, arrays and records. */
export function keysAt(schema: z.ZodType, path: (string | number)[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const key of [...path, undefined]) {
    while (current) {
      const inner: Def = (current as unknown as { _zod: { def: Def } })._zod.def;
      const def = inner;
      if (def.innerType) current = def.innerType;
      else if (def.type === 'pipe' && def.in) current = def.in;
      else break;
    }
    if (!current) return [];
    const def: Def = (current as unknown as { _zod: { def: Def } })._zod.def;
    if (key === undefined) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    if (def.type === 'object' && def.shape) current = def.shape[String(key)];
    else if (def.type === 'array') current = def.element;
    else if (def.type === 'record') current = def.valueType;
    else return [];
  }
  return [];
}
