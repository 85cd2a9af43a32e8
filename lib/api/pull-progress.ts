/**
 * `PullReporter`: an image pull's progress as docker's JSON-lines stream (`POST /images/create`):
 * "Pulling from", per layer "Pulling fs layer" … "Pull complete", then "Digest:" and "Status:".
 * The docker CLI and dockerode's followProgress draw their bars from these lines.
 */
import type { PullProgress } from '../image/image.js';
import type { Reference } from '../image/reference.js';

export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  error?: string;
  errorDetail?: { message: string };
}

const shortId = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/** docker's bar: `[=====>      ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number): string {
  const width = 50;
  const filled = total > 0 ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const bar = filled === 0 ? ' '.repeat(width) : '='.repeat(filled - 1) + '>' + ' '.repeat(width - filled);
  return `[${bar}] ${size(current)}/${size(total)}`;
}

function size(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(2).replace(/\.?0+$/, '')}${units[i]}`;
}

export class PullReporter {
  readonly #write: (m: ProgressMessage) => void;
  readonly #seen = new Set<string>();
  readonly #lastDraw = new Map<string, number>();
  #downloaded = false;
  readonly #now: () => number;

  constructor(write: (m: ProgressMessage) => void, now: () => number = Date.now) {
    this.#write = write;
    this.#now = now;
  }

  begin(ref: Reference): void {
    this.#write({ status: `Pulling from ${ref.path}`, id: ref.digest ?? ref.tag ?? 'latest' });
  }

  /** The image's progress events, as docker's statuses; downloads redrawn at most every 100 ms per layer. */
  onProgress(p: PullProgress): void {
    if (p.phase === 'resolved') return;
    const id = shortId(p.id);
    if (!this.#seen.has(id)) {
      this.#seen.add(id);
      if (p.phase !== 'exists') this.#write({ status: 'Pulling fs layer', id, progressDetail: {} });
    }
    switch (p.phase) {
      case 'exists':
        this.#write({ status: 'Already exists', id, progressDetail: {} });
        return;
      case 'downloading': {
        const now = this.#now();
        if (now - (this.#lastDraw.get(id) ?? 0) < 100 && p.done !== p.total) return;
        this.#lastDraw.set(id, now);
        const current = p.done ?? 0;
        const total = p.total ?? 0;
        this.#write({ status: 'Downloading', id, progressDetail: { current, total }, progress: progressBar(current, total) });
        return;
      }
      case 'retrying':
        this.#write({ status: 'Retrying', id, progressDetail: {} });
        return;
      case 'done':
        this.#downloaded = true;
        this.#write({ status: 'Download complete', id, progressDetail: {} });
        return;
      case 'unpacking':
        this.#write({ status: 'Extracting', id, progressDetail: {} });
        return;
      case 'unpacked':
        this.#write({ status: 'Pull complete', id, progressDetail: {} });
        return;
    }
  }

  /** The closing lines; "up to date" when nothing had to be downloaded and the name was there. */
  end(ref: Reference, digest: string, hadName: boolean): void {
    this.#write({ status: `Digest: ${digest}` });
    const name = ref.familiar;
    this.#write({ status: this.#downloaded || !hadName ? `Status: Downloaded newer image for ${name}` : `Status: Image is up to date for ${name}` });
  }

  fail(message: string): void {
    this.#write({ errorDetail: { message }, error: message });
  }
}
