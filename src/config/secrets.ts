/**
 * Secrets in the config: passwords, tokens and the password part of URLs. They are collected once
 * so that every line printed (logs, errors, a tool's stderr) can be scrubbed of them, and URLs are
 * shown with the password masked.
 */

const SECRET_KEY = /pass(word|phrase)?$|secret|token|apikey|accesskeyid/i;

export function maskUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]*)@/gi, '$1***@');
}

/** Every secret value in a (validated, interpolated) config: by key name, URL passwords, notify URLs. */
export function collectSecrets(config: unknown): Set<string> {
  const out = secretValues(config, '', new Set());
  for (const notify of notifyBlocks(config)) notifySecrets(notify, out);
  return out;
}

function secretValues(value: unknown, key: string, out: Set<string>): Set<string> {
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
    for (const item of value) secretValues(item, key, out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, item] of Object.entries(value)) secretValues(item, k, out);
  }
  return out;
}

const record = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/** `defaults.notify` and every `targets.<name>.notify`. */
function notifyBlocks(config: unknown): Record<string, unknown>[] {
  const top = record(config);
  const targets = Object.values(record(top?.targets) ?? {}).map((target) => record(target)?.notify);
  return [record(top?.defaults)?.notify, ...targets].map(record).filter((block) => block !== undefined);
}

/**
 * A webhook's or a ping's URL is a secret whole (its path is often the token); an SMTP URL's
 * password is. A URL with no path or query holds nothing beyond its userinfo, masked anyway.
 */
function notifySecrets(notify: Record<string, unknown>, out: Set<string>): void {
  for (const key of ['webhook', 'ping']) {
    const url = record(notify[key])?.url;
    if (typeof url !== 'string') continue;
    const text = url.trim();
    const parsed = URL.canParse(text) ? new URL(text) : undefined;
    if (!parsed || (parsed.pathname === '/' && !parsed.search && !parsed.hash)) continue;
    for (const form of [text, text.replace(/\/+$/, ''), parsed.href]) out.add(form);
  }
  const email = record(notify.email)?.url;
  if (typeof email === 'string' && URL.canParse(email.trim())) {
    const password = new URL(email.trim()).password;
    if (password) {
      out.add(password);
      out.add(safeDecode(password));
    }
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
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
