/**
 * What a notification says, built from a run's report: pure functions, no I/O. Every text that
 * leaves the process passes through `scrub` (the config's secrets, URL passwords) first.
 */
import type { RunReport } from '../app/deps.js';
import type { NotifyConfig } from '../config/operations.js';
import { formatDuration } from '../core/duration.js';

export type ChannelKind = 'email' | 'webhook' | 'ping';

/** One place a notification goes, with where the config set it (`defaults.notify`, `targets.crm.notify`). */
export type Channel =
  | { kind: 'email'; url: string; from: string; to: string[]; at: string }
  | { kind: 'webhook'; url: string; at: string }
  | { kind: 'ping'; url: string; at: string };

/** What the host and scrubber add to a report. */
export interface MessageContext {
  host: string;
  scrub: (text: string) => string;
}

export interface EmailMessage {
  subject: string;
  text: string;
}

/** The webhook's JSON body (contract: "notify"). `time` is when the run started, as in history. */
export interface WebhookPayload {
  event: string;
  ok: boolean;
  target: string | null;
  id: string | null;
  error: string | null;
  durationMs: number;
  host: string;
  time: string;
}

/** The channels of one notify block, in the order email, webhook, ping. */
export function channelsOf(notify: NotifyConfig): Channel[] {
  const channels: Channel[] = [];
  if (notify.email) channels.push({ kind: 'email', ...notify.email, at: notify.at });
  if (notify.webhook) channels.push({ kind: 'webhook', url: notify.webhook.url, at: notify.at });
  if (notify.ping) channels.push({ kind: 'ping', url: notify.ping.url, at: notify.at });
  return channels;
}

/** Whether email and webhook are sent for this outcome (`on`); pings go for every run. */
export function wants(notify: NotifyConfig, ok: boolean): boolean {
  return ok ? notify.onSuccess : notify.onFailure;
}

/**
 * A channel's URL as logs and output show it: SMTP with the password masked; a webhook's or ping's
 * with its path and query hidden, since they often are the token.
 */
export function maskChannelUrl(url: string): string {
  if (!URL.canParse(url)) return '***';
  const parsed = new URL(url);
  if (parsed.protocol === 'smtp:' || parsed.protocol === 'smtps:') {
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  }
  const hidden = parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '';
  return `${parsed.protocol}//${parsed.host}${hidden ? '/***' : ''}`;
}

/** "backup of crm failed", "verify ok". */
export function describeRun(report: Pick<RunReport, 'command' | 'target' | 'ok'>): string {
  return `${report.command}${report.target ? ` of ${report.target}` : ''} ${report.ok ? 'ok' : 'failed'}`;
}

/**
 * A tool failure's message ends with its stderr tail, indented; the email shows that tail in a
 * section of its own, so the message is cut before it.
 */
function splitError(error: string, stderrTail: string | null): { head: string; tail: string | null } {
  if (!stderrTail) return { head: error, tail: null };
  const indented = stderrTail
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
  const head = error.endsWith(indented) ? error.slice(0, -indented.length).replace(/:\n$/, '') : error;
  return { head, tail: stderrTail };
}

export function emailMessage(report: RunReport, ctx: MessageContext): EmailMessage {
  const lines = [`${describeRun(report)} on ${ctx.host}.`, ''];
  if (!report.ok && report.error !== null) {
    const { head, tail } = splitError(report.error, report.stderrTail);
    lines.push('Error:', indentText(head), '');
    if (tail) lines.push("The tool's stderr (last lines):", indentText(tail), '');
  }
  const facts: [string, string | null][] = [
    ['Command', report.command],
    ['Target', report.target],
    ['Backup', report.id],
    ['Outcome', report.ok ? 'ok' : `failed (exit code ${report.code})`],
    ['Started', report.started.toISOString()],
    ['Duration', formatDuration(report.durationMs)],
    ['Host', ctx.host],
  ];
  for (const [name, value] of facts) if (value !== null) lines.push(`${`${name}:`.padEnd(10)}${value}`);
  return {
    subject: ctx.scrub(`[backupkit] ${ctx.host}: ${describeRun(report)}`),
    text: ctx.scrub(`${lines.join('\n')}\n`),
  };
}

export function webhookPayload(report: RunReport, ctx: MessageContext): WebhookPayload {
  return {
    event: report.command,
    ok: report.ok,
    target: report.target,
    id: report.id,
    error: report.error === null ? null : ctx.scrub(report.error),
    durationMs: report.durationMs,
    host: ctx.host,
    time: report.started.toISOString(),
  };
}

/** A ping's body: one line for the check's log, the error on a failure (bounded, as services cap bodies). */
export function pingBody(report: RunReport, ctx: MessageContext): string {
  const head = `${describeRun(report)} on ${ctx.host}${report.id ? ` (${report.id})` : ''} in ${formatDuration(report.durationMs)}`;
  const text = report.ok || report.error === null ? head : `${head}\n${report.error}`;
  return ctx.scrub(text).slice(0, 10_000);
}

/** The test message `notify test` sends, through each channel's usual shape. */
export function testMessage(host: string, now: Date): { email: EmailMessage; webhook: WebhookPayload; ping: string } {
  const text = `A test notification from backupkit on ${host}, sent by "backupkit notify test" at ${now.toISOString()}.`;
  return {
    email: { subject: `[backupkit] ${host}: test notification`, text: `${text}\nWhen a run fails, a message like this one names the target, the error and the tool's stderr.\n` },
    webhook: { event: 'test', ok: true, target: null, id: null, error: null, durationMs: 0, host, time: now.toISOString() },
    ping: text,
  };
}

function indentText(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
