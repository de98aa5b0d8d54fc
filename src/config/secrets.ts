/**
 * Secrets in the config: passwords, tokens and the password part of URLs. They are collected once
 * so that every line printed (logs, errors, a tool's stderr) can be scrubbed of them, and URLs are
 * shown with the password masked.
 */

const SECRET_KEY = /pass(word|phrase)?$|secret|token|apikey|accesskeyid/i;

export function maskUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]*)@/gi, '$1***@');
}

/** Every secret value in a (validated, interpolated) config. */
export function collectSecrets(value: unknown, key = '', out = new Set<string>()): Set<string> {
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key) && value.length > 0) out.add(value);
    for (const match of value.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:([^@/?#\s]+)@/gi)) {
      const password = match[1]!;
      out.add(password);
      try {
        out.add(decodeURIComponent(password));
      } catch {
        // not percent-encoded: the raw form is already collected
      }
    }
  } else if (Array.isArray(value)) {
    for (const item of value) collectSecrets(item, key, out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, item] of Object.entries(value)) collectSecrets(item, k, out);
  }
  return out;
}

/** Replace every known secret in `text` with `***`, and mask URL passwords. */
export function redact(text: string, secrets: ReadonlySet<string>): string {
  let out = maskUrl(text);
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length < 3) continue;
    out = out.split(secret).join('***');
  }
  return out;
}
