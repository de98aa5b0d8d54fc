/** The webhook channel: the run as one JSON POST (contract: "notify"; shape in message.ts). */
import { type HttpOptions, post } from './http.js';
import type { WebhookPayload } from './message.js';

export async function sendWebhook(url: string, payload: WebhookPayload, options: HttpOptions): Promise<void> {
  await post(url, { type: 'application/json', text: JSON.stringify(payload) }, options);
}
