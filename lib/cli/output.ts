/** docker's output conventions: aligned tables, short ids, human sizes and times; writing to stdout. */
import { writeSync } from 'node:fs';

/**
 * Writes `text` to fd 1 at once, without making process.stdout: setting that stream up costs a
 * short command several milliseconds (net or fs streams). Writes stay in order with process.stdout's,
 * which are synchronous on Linux for files, pipes and terminals. A reader that went away (EPIPE)
 * ends the command quietly, as main.ts's handler does for the stream; a full non-blocking pipe
 * (EAGAIN) gets the rest through process.stdout, which waits for it.
 */
export function writeOut(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(1, buf, off);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
    if (code !== 'EAGAIN') throw e;
    process.stdout.write(buf.subarray(off));
  }
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** 1.09MB, 51.2MB, 4.2kB: docker's decimal units; with `binary`, 1.5MiB (docker stats' memory). */
export function humanSize(bytes: number, { binary = false } = {}): string {
  const base = binary ? 1024 : 1000;
  const units = binary ? ['B', 'KiB', 'MiB', 'GiB', 'TiB'] : ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  if (i === 0) return `${v}${units[0]}`;
  return `${(binary ? v.toFixed(2) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)).replace(/\.0+$|(\.\d*?)0+$/, '$1')}${units[i]}`;
}

/** "3 seconds ago", "2 years ago". */
export function timeAgo(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  const steps: Array<[number, string]> = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];
  let v = s;
  for (const [n, unit] of steps) {
    if (v < n) {
      const k = Math.floor(v);
      return k <= 1 && unit === 'second' ? 'Less than a second ago' : `${k} ${unit}${k === 1 ? '' : 's'} ago`;
    }
    v /= n;
  }
  return 'a long time ago';
}

export const shortId = (digestOrId: string) => digestOrId.replace(/^sha256:/, '').slice(0, 12);
