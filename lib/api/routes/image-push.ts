/**
 * `POST /images/{name}/push?tag=`: docker's push, as its JSON-lines progress stream ("The push
 * refers to repository", per layer "Preparing", "Pushing", "Pushed", "Layer already exists",
 * "Mounted from …", then "TAG: digest: … size: …" and the `aux` record the docker CLI reads).
 * An empty `tag` pushes every tag of the repository, as docker's API does. Credentials come in
 * X-Registry-Auth. A push that fails before its first line gets an HTTP error, as docker's does.
 */
import type { Writable } from 'node:stream';
import type { PushProgress, PushResult } from '../../image/push.js';
import { parseReference } from '../../image/reference.js';
import type { ApiContext } from '../api-context.js';
import type { Exchange } from '../exchange.js';
import { progressBar, type ProgressMessage } from '../pull-progress.js';
import { registryAuth } from '../registry-auth.js';
import type { Router } from '../router.js';

const shortId = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

const STATUS: Record<Exclude<PushProgress['phase'], 'mounted'>, string> = {
  preparing: 'Preparing',
  pushing: 'Pushing',
  pushed: 'Pushed',
  exists: 'Layer already exists',
};

/** One push progress event as docker's line; redraws of a layer's bar at most every 100 ms. */
export class PushReporter {
  readonly #write: (m: ProgressMessage & { aux?: unknown }) => void;
  readonly #lastDraw = new Map<string, number>();
  readonly #now: () => number;
  constructor(write: (m: ProgressMessage & { aux?: unknown }) => void, now: () => number = Date.now) {
    this.#write = write;
    this.#now = now;
  }

  begin(repository: string): void {
    this.#write({ status: `The push refers to repository [${repository}]` });
  }

  onProgress(p: PushProgress): void {
    const id = shortId(p.id);
    if (p.phase === 'pushing') {
      const now = this.#now();
      if (now - (this.#lastDraw.get(id) ?? 0) < 100 && p.done !== p.total) return;
      this.#lastDraw.set(id, now);
      const current = p.done ?? 0;
      const total = p.total ?? 0;
      this.#write({ status: 'Pushing', id, progressDetail: { current, total }, progress: progressBar(current, total) });
      return;
    }
    const status = p.phase === 'mounted' ? `Mounted from ${p.from ?? ''}` : STATUS[p.phase];
    this.#write({ status, id, progressDetail: {} });
  }

  pushed(r: PushResult): void {
    for (const w of r.warnings) this.#write({ status: `WARNING: ${w}` });
    this.#write({ status: `${r.tag}: digest: ${r.digest} size: ${r.size}` });
    this.#write({ progressDetail: {}, aux: { Tag: r.tag, Digest: r.digest, Size: r.size } });
  }

  fail(message: string): void {
    this.#write({ errorDetail: { message }, error: message });
  }
}

export function imagePushRoutes(router: Router, ctx: ApiContext): void {
  router.add('POST', '/images/*name/push', async (ex: Exchange) => {
    const name = ex.params['name']!;
    const tag = ex.query.get('tag') ?? '';
    const ref = parseReference(tag ? `${name}:${tag}` : name);
    const auth = registryAuth(ex.headers['x-registry-auth']);
    let out: Writable | undefined;
    const held: string[] = [];
    const write = (m: object) => {
      const line = JSON.stringify(m) + '\r\n';
      if (out) out.write(line);
      else held.push(line);
    };
    const open = () => {
      if (out) return;
      out = ex.stream(200, 'application/json');
      for (const l of held.splice(0)) out.write(l);
    };
    const reporter = new PushReporter(write);
    reporter.begin(ref.familiar.replace(/[:@][^/]*$/, ''));
    try {
      await ctx.engine.images.push(tag ? ref.toString() : name, {
        ...(auth ? { auth } : {}),
        allTags: !tag,
        signal: ex.signal,
        onProgress: (p) => {
          open();
          reporter.onProgress(p);
        },
        onPushed: (r) => {
          open();
          reporter.pushed(r);
        },
      });
      open();
      out!.end();
    } catch (e) {
      if (!out) throw e;
      reporter.fail((e as Error).message);
      out.end();
    }
  });
}
