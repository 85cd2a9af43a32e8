/**
 * `Date.prototype.toISOString`, for the quick commands' paths (reconcile-with.ts, cli/quick/run.ts):
 * V8's own takes ~1 ms on its first call in a process (a tenth of what `nsbox ps` may take over
 * `node -e 0`), this one a few microseconds. Same text for years 0–9999 (V8's is used for the
 * others, written with a sign and six digits), the same RangeError for an invalid date.
 */
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

export function isoString(d: Date): string {
  const year = d.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) return d.toISOString(); // NaN (an invalid date) too: its RangeError
  return `${pad(year, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}
