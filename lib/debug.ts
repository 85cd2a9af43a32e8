/**
 * `NSBOX_DEBUG=TOPIC[,TOPIC...]` (or `1` for all): one line on stderr for each choice a fast path
 * makes silently, e.g. why the quick `run --rm` left a run to the full command (`run-plan`). Off,
 * it costs one environment read; nothing a command prints otherwise changes.
 */
export function debug(topic: string, text: string): void {
  const v = process.env.NSBOX_DEBUG;
  if (!v || (v !== '1' && !v.split(',').includes(topic))) return;
  process.stderr.write(`nsbox debug: ${topic}: ${text}\n`);
}
