/**
 * The keys of the long-running mode and of run reports, resolved: schedules checked by croner,
 * `maxAge` (with its default for daily schedules), `notify` channels, `daemon.listen`. Problems go
 * into `problems` as "key path: what is wrong".
 */
import { parseDuration } from '../core/duration.js';
import { formatPath } from './paths.js';
import { checkCron, defaultMaxAgeMs } from './schedule.js';
import type { NotifyRules } from './schema.js';

export interface NotifyConfig {
  /** Which outcomes are sent. */
  onFailure: boolean;
  onSuccess: boolean;
  email: { url: string; from: string; to: string[] } | undefined;
  webhook: { url: string } | undefined;
  ping: { url: string } | undefined;
  /** Where it was configured (`defaults.notify`, `targets.crm.notify`), for messages. */
  at: string;
}

export interface TargetOperations {
  schedule: string | undefined;
  verifySchedule: string | undefined;
  verifyDeep: boolean;
  /** How old the newest good backup may be; undefined: no limit. */
  maxAgeMs: number | undefined;
  notify: NotifyConfig | undefined;
}

export interface DaemonConfig {
  listen: { host: string; port: number } | undefined;
  concurrency: number;
}

interface OperationKeys {
  schedule?: string | undefined;
  verifySchedule?: string | undefined;
  verifyDeep?: boolean | undefined;
  maxAge?: string | number | undefined;
  notify?: NotifyRules | undefined;
}

/** A target's keys over `defaults`' (each key on its own; `notify` whole). */
export function resolveOperations(
  own: OperationKeys,
  defaults: OperationKeys | undefined,
  timezone: string | undefined,
  at: readonly (string | number)[],
  problems: string[],
  now: Date,
): TargetOperations {
  const pick = <K extends keyof OperationKeys>(key: K): { value: OperationKeys[K]; path: string } =>
    own[key] !== undefined ? { value: own[key], path: formatPath([...at, key]) } : { value: defaults?.[key], path: formatPath(['defaults', key]) };
  const cron = (key: 'schedule' | 'verifySchedule'): string | undefined => {
    const { value, path } = pick(key);
    if (value === undefined || value.trim() === '') return undefined;
    const problem = checkCron(value, timezone);
    if (problem) {
      problems.push(`${path}: ${problem}`);
      return undefined;
    }
    return value.trim();
  };
  const schedule = cron('schedule');
  const verifySchedule = cron('verifySchedule');
  const maxAge = pick('maxAge').value;
  const notify = pick('notify');
  return {
    schedule,
    verifySchedule,
    verifyDeep: pick('verifyDeep').value ?? false,
    maxAgeMs: maxAge !== undefined ? parseDuration(maxAge) : schedule ? defaultMaxAgeMs(schedule, timezone, now) : undefined,
    notify: notify.value ? resolveNotify(notify.value, notify.path, problems) : undefined,
  };
}

/** A channel whose url is blank (`"${SMTP_URL:-}"` unset) is off. */
export function resolveNotify(rules: NotifyRules, at: string, problems: string[]): NotifyConfig | undefined {
  const on = new Set(rules.on === undefined ? ['failure'] : Array.isArray(rules.on) ? rules.on : [rules.on]);
  const url = (value: string, key: string, schemes: string[]): string | undefined => {
    const text = value.trim();
    if (text === '') return undefined;
    let parsed: URL | undefined;
    try {
      parsed = new URL(text);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !schemes.includes(parsed.protocol.replace(/:$/, ''))) {
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1];
      problems.push(`${at}.${key}: expected a ${schemes.map((s) => `${s}://`).join(' or ')} URL${scheme ? `, got a ${scheme}: URL` : ''}`);
      return undefined;
    }
    return text;
  };
  const emailUrl = rules.email ? url(rules.email.url, 'email.url', ['smtp', 'smtps']) : undefined;
  const webhookUrl = rules.webhook ? url(rules.webhook.url, 'webhook.url', ['http', 'https']) : undefined;
  const pingUrl = rules.ping ? url(rules.ping.url, 'ping.url', ['http', 'https']) : undefined;
  const email = rules.email && emailUrl ? { url: emailUrl, from: rules.email.from, to: Array.isArray(rules.email.to) ? rules.email.to : [rules.email.to] } : undefined;
  if (!email && !webhookUrl && !pingUrl) return undefined;
  return {
    onFailure: on.has('failure') || on.has('always'),
    onSuccess: on.has('success') || on.has('always'),
    email,
    webhook: webhookUrl ? { url: webhookUrl } : undefined,
    ping: pingUrl ? { url: pingUrl } : undefined,
    at,
  };
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;

/** `daemon.listen` ("127.0.0.1:9180", "[::1]:9180", ":9180" for loopback); other hosts need `listenPublic`. */
export function resolveDaemon(rules: { listen?: string | undefined; listenPublic?: boolean | undefined; concurrency?: number | undefined } | undefined, problems: string[]): DaemonConfig {
  const concurrency = rules?.concurrency ?? 1;
  const text = rules?.listen?.trim();
  if (!text) return { listen: undefined, concurrency };
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    problems.push(`daemon.listen: "${text}" is not host:port; e.g. "127.0.0.1:9180"`);
    return { listen: undefined, concurrency };
  }
  const host = match[1] ?? (match[2] || '127.0.0.1');
  if (!LOOPBACK.test(host) && rules?.listenPublic !== true) {
    problems.push(`daemon.listen: ${host} is not a loopback address; /healthz and /metrics are open to anyone who can reach it. Set "daemon": {"listenPublic": true} to allow it, or listen on 127.0.0.1`);
  }
  return { listen: { host, port }, concurrency };
}
