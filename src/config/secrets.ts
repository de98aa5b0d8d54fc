/**
 * Secrets in the config, known by where a value sits or where it came from, not guessed from key
 * names:
 * - every value that `${VAR}` fills from the environment, unless it is obviously not secret
 *   (isPublicValue); a `${VAR:-default}` default is written in the config file and is not one;
 * - the values at the schema's secret positions (SECRET_PATHS), however they were written;
 * - the password of any URL (`scheme://user:password@host`), anywhere in the config.
 * They are collected once so that every line printed (logs, errors, a tool's stderr, history) can
 * be scrubbed of them; URL passwords and age identities are masked by their shape as well.
 */

/** A value `${name}` filled in from the environment, at `path` of the config. */
export interface EnvFill {
  path: (string | number)[];
  name: string;
  value: string;
}

/** The schema's secret positions, `*` for any name (a storage, a target). */
const SECRET_PATHS = [
  'storages.*.accessKeyId',
  'storages.*.secretAccessKey',
  'storages.*.sessionToken',
  'targets.*.password',
  'defaults.encryption.passphrase',
  'targets.*.encryption.passphrase',
  // A webhook's or ping's URL is its credential: anyone holding it can post or ping.
  'defaults.notify.webhook.url',
  'defaults.notify.ping.url',
  'targets.*.notify.webhook.url',
  'targets.*.notify.ping.url',
].map((p) => p.split('.'));

/**
 * Values from the environment shorter than this are not taken for secrets: masking every
 * occurrence of `prod` or `5432` would garble output and hide nothing worth hiding (GitLab's masked
 * variables draw the line at 8 as well).
 */
export const MIN_ENV_SECRET_LENGTH = 8;
/** `/srv/backups`, `~/media`, `./shop`, `C:\data`: a path of plain characters (`${HOME}`, a mount point). */
const PATH_LIKE = /^(?:\/|~\/|\.\.?\/|[A-Za-z]:[\\/])[\w .~/\\-]*$/;
/** `http://minio:9000`, `mongodb://localhost:27017`: a scheme, a host and a port, nothing more. */
const ORIGIN_URL = /^[a-z][a-z0-9+.-]*:\/\/[\w.-]+(?::\d+)?\/?$/i;
const URL_PASSWORD = /\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:([^@/?#\s]+)@/gi;
const AGE_IDENTITY = /AGE-SECRET-KEY-1[0-9A-Z]+/g;

/** Is a value from the environment obviously not secret: short, a path, or a bare origin URL? */
export function isPublicValue(value: string): boolean {
  return value.length < MIN_ENV_SECRET_LENGTH || PATH_LIKE.test(value) || ORIGIN_URL.test(value);
}

export function maskUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]*)@/gi, '$1***@');
}

/** Every secret value in a (validated, interpolated) config, and those `fills` brought from the environment. */
export function collectSecrets(config: unknown, fills: readonly EnvFill[] = []): Set<string> {
  const out = new Set<string>();
  walk(config, [], (value, path) => {
    if (value.length > 0 && SECRET_PATHS.some((pattern) => matches(pattern, path))) {
      for (const form of secretForms(value)) out.add(form);
    }
    for (const match of value.matchAll(URL_PASSWORD)) {
      const password = match[1]!;
      out.add(password);
      try {
        out.add(decodeURIComponent(password));
      } catch {
        // not percent-encoded: the raw form is already collected
      }
    }
  });
  for (const fill of fills) if (!isPublicValue(fill.value)) out.add(fill.value);
  return out;
}

/**
 * A secret as it may be printed: as written, and for a URL without its trailing slash and as the
 * URL parser spells it. A URL that is only an origin (`https://hc-ping.example.com/`) holds no
 * secret beyond its userinfo, which maskUrl hides anyway: masking it would hide the host too.
 */
function secretForms(value: string): string[] {
  const text = value.trim();
  if (!/^https?:\/\//i.test(text) || !URL.canParse(text)) return [value];
  const url = new URL(text);
  if (url.pathname === '/' && !url.search && !url.hash) return [];
  return [...new Set([value, text, text.replace(/\/+$/, ''), url.href])];
}

/**
 * Replace every known secret in `text` with `***`, then mask URL passwords and age identities.
 * A secret is replaced where it stands on its own: not where it is only part of a longer word
 * (a user name `postgres` from the environment leaves `postgresql-client` alone).
 */
export function redact(text: string, secrets: ReadonlySet<string>): string {
  let out = text;
  const known = [...secrets].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  if (known.length > 0) {
    const alternatives = known.map((s) => `${/^[A-Za-z0-9]/.test(s) ? '(?<![A-Za-z0-9])' : ''}${escape(s)}${/[A-Za-z0-9]$/.test(s) ? '(?![A-Za-z0-9])' : ''}`);
    out = out.replace(new RegExp(alternatives.join('|'), 'g'), '***');
  }
  return maskUrl(out).replace(AGE_IDENTITY, 'AGE-SECRET-KEY-1***');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function matches(pattern: string[], path: (string | number)[]): boolean {
  return pattern.length === path.length && pattern.every((key, i) => key === '*' || key === String(path[i]));
}

function walk(value: unknown, path: (string | number)[], visit: (value: string, path: (string | number)[]) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((item, i) => walk(item, [...path, i], visit));
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) walk(item, [...path, key], visit);
}
