/**
 * How a channel tries: a few attempts with a short backoff, each bounded by its own timeout, and a
 * deadline over them all. A notification is worth a retry or two, never a hung run.
 */
import { formatDuration } from '../core/duration.js';

export interface RetryPolicy {
  /** Attempts in all (1 = no retry). */
  tries: number;
  /** The wait before the 2nd, 3rd, ... attempt (the last value repeats). */
  backoffMs: number[];
  /** One attempt's bound: connecting, the answer, each idle stretch. */
  timeoutMs: number;
  /** The bound over every attempt and wait. */
  deadlineMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { tries: 3, backoffMs: [500, 2000], timeoutMs: 10_000, deadlineMs: 45_000 };

/** A failed attempt; `retryable` when another attempt may fare better (network, 5xx, SMTP 4xx). */
export class SendError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SendError';
  }
}

// Both timers hold the process open: a CLI run waits for its notifications (bounded by the deadline).
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Run `attempt` until it succeeds, fails for good, or the tries or the deadline run out. The error
 * of the last attempt is thrown, with the number of attempts when there were several.
 */
export async function withRetries(attempt: () => Promise<void>, policy: RetryPolicy = DEFAULT_RETRY): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SendError(`gave up after ${formatDuration(policy.deadlineMs)}`, false)), policy.deadlineMs);
  });
  const loop = async () => {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        const retryable = error instanceof SendError ? error.retryable : false;
        if (!retryable || n >= policy.tries) {
          if (n === 1) throw error;
          throw new SendError(`${error instanceof Error ? error.message : String(error)} (after ${n} attempts)`, false, { cause: error });
        }
      }
      await sleep(policy.backoffMs[Math.min(n - 1, policy.backoffMs.length - 1)] ?? 0);
    }
  };
  try {
    await Promise.race([loop(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
