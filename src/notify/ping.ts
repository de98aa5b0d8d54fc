/**
 * The ping channel, healthchecks.io style: `<url>/start` as a run starts, `<url>` when it ends
 * well, `<url>/fail` when it fails, `<url>/log` for a test (recorded, not counted as a run). The
 * body is a short text the service keeps in the check's log.
 * https://healthchecks.io/docs/http_api/
 */
import { type HttpOptions, post } from './http.js';

export type PingKind = 'start' | 'success' | 'fail' | 'log';

/** The URL for a ping: the suffix joins the path, before any query (`?rid=`, `?create=1`). */
export function pingUrl(url: string, kind: PingKind): string {
  if (kind === 'success') return url;
  const parsed = new URL(url);
  parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/${kind}`;
  return parsed.href;
}

export async function sendPing(url: string, kind: PingKind, text: string, options: HttpOptions): Promise<void> {
  await post(pingUrl(url, kind), { type: 'text/plain; charset=utf-8', text }, options);
}
