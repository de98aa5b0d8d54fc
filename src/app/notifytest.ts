/**
 * notify test: a test message through every configured channel, `defaults.notify`'s and each
 * selected target's, each distinct channel once. Pings go to `<url>/log`, which a healthchecks.io
 * check records without counting it as a run.
 */
import { redact } from '../config/secrets.js';
import { UsageError, errorMessage } from '../core/errors.js';
import { type Channel, type Content, channelsOf, maskChannelUrl, sendTo, testMessage } from '../notify/index.js';
import { type AppDeps, selectTargets } from './deps.js';

export interface NotifyTestResult {
  channel: Channel['kind'];
  /** Where the channel is configured: `defaults.notify`, `targets.crm.notify`. */
  at: string;
  /** The URL as it may be shown (password, or path and query, masked). */
  url: string;
  ok: boolean;
  error: string | null;
}

export type SendFn = (channel: Channel, content: Content) => Promise<void>;

const EXAMPLE = `"defaults": {"notify": {"on": ["failure"],
    "email": {"url": "smtp://user:\${SMTP_PASSWORD}@smtp.example.com:587", "from": "backupkit@example.com", "to": ["ops@example.com"]},
    "webhook": {"url": "https://hooks.example.com/backups"},
    "ping": {"url": "https://hc-ping.com/<uuid>"}}}`;

/** The distinct channels for these targets (every target when none are named), defaults' first. */
export function configuredChannels(deps: Pick<AppDeps, 'config'>, targets: string[]): Channel[] {
  const blocks = [deps.config.notify, ...selectTargets(deps, targets).map((target) => target.notify)];
  const seen = new Map<string, Channel>();
  for (const block of blocks) {
    for (const channel of block ? channelsOf(block) : []) {
      const key = JSON.stringify(channel.kind === 'email' ? [channel.kind, channel.url, channel.from, channel.to] : [channel.kind, channel.url]);
      if (!seen.has(key)) seen.set(key, channel);
    }
  }
  return [...seen.values()];
}

export async function testNotifications(deps: AppDeps, targets: string[], send?: SendFn): Promise<NotifyTestResult[]> {
  const channels = configuredChannels(deps, targets);
  if (channels.length === 0) {
    throw new UsageError(`no notification channel is configured${targets.length > 0 ? ` for ${targets.join(', ')}` : ''} in ${deps.config.file}`, {
      hint: `Add a notify block to defaults or to a target, e.g.\n  ${EXAMPLE}`,
    });
  }
  const message = testMessage(deps.host, deps.now());
  const content: Content = { email: message.email, webhook: message.webhook, ping: { kind: 'log', text: message.ping } };
  const deliver: SendFn = send ?? ((channel, body) => sendTo(channel, body, { version: deps.version }));
  return Promise.all(
    channels.map(async (channel): Promise<NotifyTestResult> => {
      const base = { channel: channel.kind, at: channel.at, url: maskChannelUrl(channel.url) };
      try {
        await deliver(channel, content);
        return { ...base, ok: true, error: null };
      } catch (error) {
        return { ...base, ok: false, error: redact(errorMessage(error), deps.config.secrets) };
      }
    }),
  );
}
