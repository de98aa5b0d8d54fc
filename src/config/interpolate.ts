/**
 * `${VAR}` and `${VAR:-default}` in any string of the config, filled from the environment before
 * validation. An unset variable without a default is a problem that names the variable and the key.
 * Each value taken from the environment is recorded in `fills` (its key path and variable): where a
 * value came from is what decides whether it is a secret (see secrets.ts).
 */
import { formatPath } from './paths.js';
import type { EnvFill } from './secrets.js';

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Deeper than any config is written (its deepest keys are five levels down); past it, a problem. */
const MAX_DEPTH = 32;

/**
 * The config with every reference filled in, as plain data: objects get every key as their own
 * property, "__proto__" included, so that no key can change an object's prototype or slip past
 * validation unseen. A value nested deeper than MAX_DEPTH is a problem, never a stack overflow.
 */
export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  problems: string[],
  fills: EnvFill[] = [],
  path: (string | number)[] = [],
): unknown {
  if (path.length > MAX_DEPTH) {
    problems.push(`${formatPath(path)}: nested more than ${MAX_DEPTH} levels deep`);
    return value;
  }
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (whole, name: string, fallback: string | undefined) => {
      const set = env[name];
      if (set !== undefined && set !== '') {
        fills.push({ path, name, value: set });
        return set;
      }
      if (fallback !== undefined) return fallback;
      problems.push(
        `${formatPath(path)}: environment variable ${name} is not set (set it, or write \${${name}:-default} to give a default)`,
      );
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, env, problems, fills, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(out, key, { value: interpolate(item, env, problems, fills, [...path, key]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
