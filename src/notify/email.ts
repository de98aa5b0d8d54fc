/**
 * The email channel: one plain-text message through SMTP with nodemailer. `url` is
 * `smtp://user:password@host:587` (STARTTLS when the server offers it) or `smtps://...:465`;
 * nodemailer's own options may ride in its query (`?requireTLS=true`, `?tls.rejectUnauthorized=false`).
 * https://nodemailer.com/smtp/
 */
import { DEFAULT_RETRY, type RetryPolicy, SendError, withRetries } from './retry.js';
import type { EmailMessage } from './message.js';

export interface EmailChannel {
  url: string;
  from: string;
  to: string[];
}

/** Codes nodemailer gives failures worth another attempt: the connection, not the message or login. */
const TRANSIENT = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNRESET', 'EPROTOCOL']);

export async function sendEmail(channel: EmailChannel, message: EmailMessage, options: { policy?: RetryPolicy; userAgent: string }): Promise<void> {
  const policy = options.policy ?? DEFAULT_RETRY;
  const { createTransport } = await import('nodemailer');
  const transport = createTransport({
    url: channel.url,
    connectionTimeout: policy.timeoutMs,
    greetingTimeout: policy.timeoutMs,
    socketTimeout: policy.timeoutMs,
    dnsTimeout: policy.timeoutMs,
    logger: false,
    debug: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  try {
    await withRetries(async () => {
      try {
        await transport.sendMail({
          from: channel.from,
          to: channel.to,
          subject: message.subject,
          text: message.text,
          headers: { 'X-Mailer': options.userAgent },
        });
      } catch (error) {
        const { code, responseCode } = error as { code?: string; responseCode?: number };
        const retryable = (code !== undefined && TRANSIENT.has(code)) || (responseCode !== undefined && responseCode >= 400 && responseCode < 500);
        throw new SendError(error instanceof Error ? error.message : String(error), retryable, { cause: error });
      }
    }, policy);
  } finally {
    transport.close();
  }
}
