/**
 * Go's `time.ParseDuration` syntax ("1m30s", "100ms", ".5s", "-2h", "0"), which docker uses for
 * HEALTHCHECK flags, `--health-*` and the `until` filters: one parser for the builder, the CLI and
 * the filters.
 */
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, '\u00b5s': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const WHOLE = /^([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|ms|s|m|h))+|0)$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/g;

/** The duration in nanoseconds, or undefined when the text is not a Go duration. */
export function goDurationNs(text: string): number | undefined {
  const m = WHOLE.exec(text);
  if (!m) return undefined;
  let total = 0;
  for (const [, n, u] of m[2]!.matchAll(PART)) total += Number(n) * UNIT_NS[u!]!;
  return m[1] === '-' ? -total : total;
}
