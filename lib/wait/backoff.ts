/**
 * A bounded backoff poll, for the readiness checks the kernel has no event for (a socket starting
 * to listen in another network namespace, an HTTP answer, an exec's success): tries at once, then
 * after 5 ms, doubling up to 250 ms between tries, until `check` says yes or `signal` aborts.
 */
export async function pollWithBackoff(check: () => Promise<boolean> | boolean, signal: AbortSignal): Promise<void> {
  let delay = 5;
  for (;;) {
    signal.throwIfAborted();
    if (await check()) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, delay);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    delay = Math.min(delay * 2, 250);
  }
}
