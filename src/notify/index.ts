/**
 * Notifications after every run (contract: "notify"): a RunListener built from the config. A run
 * is reported through its target's `notify` (its own, else `defaults.notify`), or `defaults.notify`
 * for a run that names no target. Email and webhook follow `on`; pings go for every run, since a
 * dead-man's switch lives on the success pings. Whatever happens here is a warning at most: the
 * run's outcome and exit code are its own.
 */
import type { RunListener, RunReport, RunStart } from '../app/deps.js';
import type { Config } from '../config/load.js';
import type { NotifyConfig } from '../config/operations.js';
import { redact } from '../config/secrets.js';
import type { Logger } from '../core/driver.js';
import { sendEmail } from './email.js';
import { sendWebhook } from './webhook.js';
import { type PingKind, sendPing } from './ping.js';
import { type Channel, type EmailMessage, type MessageContext, type WebhookPayload, channelsOf, emailMessage, maskChannelUrl, pingBody, wants, webhookPayload } from './message.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';

export { type Channel, channelsOf, maskChannelUrl, testMessage } from './message.js';

export interface NotifierOptions {
  log: Logger;
  host: string;
  version: string;
  /** Tries, backoff and timeouts (default: 3 tries, 10 s per attempt). */
  policy?: RetryPolicy;
  fetch?: typeof fetch;
}

/** What one channel carries: each kind its own shape. */
export type Content = { email: EmailMessage; webhook: WebhookPayload; ping: { kind: PingKind; text: string } };

/** Send through one channel; throws the channel's error (scrubbed by the caller). */
export async function sendTo(channel: Channel, content: Content, options: Omit<NotifierOptions, 'log' | 'host'>): Promise<void> {
  const common = httpOptions(options);
  if (channel.kind === 'email') await sendEmail(channel, content.email, common);
  else if (channel.kind === 'webhook') await sendWebhook(channel.url, content.webhook, common);
  else await sendPing(channel.url, content.ping.kind, content.ping.text, common);
}

/** The notify block a run is reported through. */
export function notifyFor(config: Config, target: string | null): NotifyConfig | undefined {
  const own = target === null ? undefined : config.targets.get(target);
  return own ? own.notify : config.notify;
}

export function createNotifier(config: Config, options: NotifierOptions): RunListener {
  const scrub = (text: string) => redact(text, config.secrets);
  const ctx: MessageContext = { host: options.host, scrub };
  const deliver = async (channel: Channel, what: string, send: () => Promise<void>): Promise<void> => {
    const url = maskChannelUrl(channel.url);
    try {
      await send();
      options.log.debug({ channel: channel.kind, at: channel.at }, `notify: ${channel.kind} ${url} (${channel.at}): ${what} sent`);
    } catch (error) {
      const message = scrub(error instanceof Error ? error.message : String(error));
      options.log.warn({ channel: channel.kind, url, at: channel.at }, `notify: ${channel.kind} ${url} (${channel.at}): could not send the ${what}: ${message}`);
    }
  };

  return {
    async runStarted(run: RunStart): Promise<void> {
      const notify = notifyFor(config, run.target);
      if (!notify?.ping) return;
      const channel: Channel = { kind: 'ping', url: notify.ping.url, at: notify.at };
      const text = scrub(`${run.command}${run.target ? ` of ${run.target}` : ''} started on ${options.host}`);
      // The run waits for this one: fewer and shorter tries, since a missed /start costs little.
      const policy = options.policy ?? DEFAULT_RETRY;
      const quick = { ...policy, tries: Math.min(policy.tries, 2), timeoutMs: Math.min(policy.timeoutMs, 5000) };
      await deliver(channel, 'start ping', () => sendPing(channel.url, 'start', text, { ...httpOptions(options), policy: quick }));
    },

    async runFinished(report: RunReport): Promise<void> {
      const notify = notifyFor(config, report.target);
      if (!notify) return;
      const content: Content = {
        email: emailMessage(report, ctx),
        webhook: webhookPayload(report, ctx),
        ping: { kind: report.ok ? 'success' : 'fail', text: pingBody(report, ctx) },
      };
      const what = `report of ${report.command}${report.target ? ` of ${report.target}` : ''}`;
      const channels = channelsOf(notify).filter((channel) => channel.kind === 'ping' || wants(notify, report.ok));
      await Promise.all(
        channels.map((channel) => deliver(channel, channel.kind === 'ping' ? `${content.ping.kind} ping` : what, () => sendTo(channel, content, options))),
      );
    },
  };
}

function httpOptions(options: Omit<NotifierOptions, 'log' | 'host'>) {
  return { userAgent: `backupkit/${options.version}`, policy: options.policy, fetch: options.fetch };
}
