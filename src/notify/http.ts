/**
 * One HTTP POST for the webhook and ping channels, through Node's fetch: each attempt bounded by
 * AbortSignal.timeout, network errors, 429 and 5xx retried, other answers final.
 */
import { formatDuration } from '../core/duration.js';
import { DEFAULT_RETRY, type RetryPolicy, SendError, withRetries } from './retry.js';

export interface HttpOptions {
  userAgent: string;
  policy?: RetryPolicy;
  fetch?: typeof fetch;
}

export async function post(url: string, body: { type: string; text: string }, options: HttpOptions): Promise<void> {
  const policy = options.policy ?? DEFAULT_RETRY;
  const doFetch = options.fetch ?? fetch;
  await withRetries(async () => {
    let response: Response;
    try {
      response = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': body.type, 'user-agent': options.userAgent },
        body: body.text,
        redirect: 'follow',
        signal: AbortSignal.timeout(policy.timeoutMs),
      });
    } catch (error) {
      throw new SendError(networkMessage(error, policy.timeoutMs), transient(error), { cause: error });
    }
    // The answer's body is not needed; reading it frees the connection.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) {
      const retryable = response.status >= 500 || response.status === 429;
      throw new SendError(`the server answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`, retryable);
    }
  }, policy);
}

/** A timeout or a system error (refused, reset, DNS) may pass; a bad URL or a blocked port will not. */
function transient(error: unknown): boolean {
  if (error instanceof DOMException) return true;
  const cause = error instanceof Error ? (error.cause as { code?: unknown; errors?: unknown[] } | undefined) : undefined;
  return typeof cause?.code === 'string' || Array.isArray(cause?.errors);
}

/** fetch's "fetch failed" says little; its cause says what (ECONNREFUSED 127.0.0.1:9, ENOTFOUND). */
function networkMessage(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${formatDuration(timeoutMs)}`;
  }
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof AggregateError && cause.errors.length > 0) return String((cause.errors[0] as Error).message ?? cause.errors[0]);
  if (cause instanceof Error && cause.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
