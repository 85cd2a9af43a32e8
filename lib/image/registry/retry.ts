/** Retries with exponential backoff (plus jitter) for transient registry failures. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Delay before the first retry; doubled each time (±25 % jitter), capped at 10 s. */
  delayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, delayMs: 250 };

/** Network errors worth another try (a connection reset mid-body, a refused connect while a registry restarts). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED', 'UND_ERR_SOCKET',
]);

export function isTransientCode(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_CODES.has(code);
}

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const base = Math.min(policy.delayMs * 2 ** attempt, 10_000);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/**
 * Runs `fn(attempt)` until it succeeds, `shouldRetry(err)` says no, or the retries are spent.
 * `onRetry` hears about each failure that will be retried.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  shouldRetry: (err: unknown) => boolean,
  opts: { signal?: AbortSignal | undefined; onRetry?: ((err: unknown, attempt: number) => void) | undefined } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.retries || !shouldRetry(err) || opts.signal?.aborted) throw err;
      opts.onRetry?.(err, attempt + 1);
      await sleep(backoffMs(policy, attempt), undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
