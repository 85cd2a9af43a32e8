/** Image endpoints: list, pull and import (`/images/create`), inspect, tag, remove; the image store does the work. */
import type { Writable } from 'node:stream';
import type { Image } from '../../image/image.js';
import { NotFoundError } from '../../errors.js';
import { parseReference, type Reference } from '../../image/reference.js';
import { parsePlatform } from '../../image/registry/platform.js';
import { ApiError } from '../api-error.js';
import type { ApiContext } from '../api-context.js';
import type { Exchange } from '../exchange.js';
import { imageInspect, imageNames, imageSummary } from '../image-json.js';
import { PullReporter, type ProgressMessage } from '../pull-progress.js';
import { boolParam, checkFilterKeys, filtersParam } from '../query.js';
import { matchesLabels } from '../../network/network-filters.js';
import { registryAuth } from '../registry-auth.js';
import type { Router } from '../router.js';

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);

/** docker's `reference` filter: `busybox`, `busybox:1`, with `*` for any run of characters but `/`. */
function referenceMatches(image: Image, patterns: string[]): boolean {
  const { tags } = imageNames(image);
  return patterns.some((p) => {
    const re = glob(p);
    return tags.some((t) => re.test(t) || re.test(t.slice(0, t.lastIndexOf(':'))));
  });
}

/** fromImage + tag, as docker joins them: a digest-looking tag is `@digest`. */
function pullReference(ex: Exchange): Reference {
  const from = ex.query.get('fromImage');
  if (!from) throw new ApiError(400, 'fromImage is required');
  const tag = ex.query.get('tag');
  const ref = !tag ? from : tag.includes(':') ? `${from}@${tag}` : `${from}:${tag}`;
  return parseReference(ref);
}

/**
 * docker import: `fromSrc=-` takes the request body as the tar, `fromSrc=http(s)://…` fetches it;
 * `repo`, `tag`, `message`, `changes` (repeated) and `platform` as docker's. The answer is one
 * JSON line with the image id, as docker's is.
 */
async function importImage(ex: Exchange, ctx: ApiContext, src: string): Promise<void> {
  if (src !== '-' && !/^https?:\/\//i.test(src)) throw new ApiError(400, `fromSrc must be - (the request body) or an http(s) URL, not ${JSON.stringify(src)}`);
  const repo = ex.query.get('repo');
  const tag = ex.query.get('tag');
  const message = ex.query.get('message');
  const platform = ex.query.get('platform');
  const image = await ctx.engine.images.import(src === '-' ? ex.bodyStream() : src, {
    ...(repo ? { name: tag ? `${repo}:${tag}` : repo } : {}),
    changes: ex.query.getAll('changes').filter((c) => c !== ''),
    ...(message ? { message } : {}),
    ...(platform ? { platform } : {}),
    signal: ex.signal,
  });
  const out = ex.stream(200, 'application/json');
  out.end(JSON.stringify({ status: image.id }) + '\r\n');
}

/**
 * The pull's lines, held back until the registry has answered: a pull that fails at once (no
 * such repository) gets a proper HTTP error, as docker's does, instead of a 200 with an error line.
 */
class LazyStream {
  #out: Writable | undefined;
  #held: ProgressMessage[] = [];
  readonly #ex: Exchange;
  constructor(ex: Exchange) {
    this.#ex = ex;
  }
  write(m: ProgressMessage): void {
    if (this.#out) this.#out.write(JSON.stringify(m) + '\r\n');
    else this.#held.push(m);
  }
  open(): void {
    if (this.#out) return;
    this.#out = this.#ex.stream(200, 'application/json');
    for (const m of this.#held) this.#out.write(JSON.stringify(m) + '\r\n');
    this.#held = [];
  }
  get opened(): boolean {
    return this.#out !== undefined;
  }
  end(): void {
    this.open();
    this.#out!.end();
  }
}

export function imageRoutes(router: Router, ctx: ApiContext): void {

  router.add('GET', '/images/json', async (ex) => {
    const filters = filtersParam(ex.query);
    checkFilterKeys(filters, ['reference', 'dangling', 'label']);
    const refs = filters.get('reference') ?? [];
    const dangling = filters.get('dangling')?.[0];
    const labels = filters.get('label') ?? [];
    const all = ex.query.get('all');
    let images = await ctx.engine.images.listed({ all: all === '1' || all === 'true' });
    if (refs.length) images = images.filter((i) => referenceMatches(i, refs));
    if (labels.length) images = images.filter((i) => matchesLabels(i.config.config?.Labels, labels));
    if (dangling !== undefined) images = images.filter((i) => (imageNames(i).tags.length === 0) === (dangling === 'true' || dangling === '1'));
    ex.send(200, images.map(imageSummary).sort((a, b) => b.Created - a.Created));
  });

  router.add('POST', '/images/create', async (ex) => {
    const src = ex.query.get('fromSrc');
    if (src) return importImage(ex, ctx, src);
    const ref = pullReference(ex);
    const auth = registryAuth(ex.headers['x-registry-auth']);
    const platform = ex.query.get('platform');
    const hadName = await ctx.engine.images.get(ref.toString()).then(
      () => true,
      (e: unknown) => {
        if (e instanceof NotFoundError) return false;
        throw e;
      },
    );
    const out = new LazyStream(ex);
    const reporter = new PullReporter((m) => out.write(m));
    reporter.begin(ref);
    try {
      const image = await ctx.engine.images.pull(ref.toString(), {
        ...(auth ? { auth } : {}),
        ...(platform ? { platform: parsePlatform(platform) } : {}),
        signal: ex.signal,
        onProgress: (p) => {
          if (p.phase !== 'resolved') out.open();
          reporter.onProgress(p);
        },
      });
      reporter.end(ref, image.digest, hadName);
      out.end();
    } catch (e) {
      if (!out.opened) throw e;
      reporter.fail((e as Error).message);
      out.end();
    }
  });

  router.add('GET', '/images/*name/json', async (ex) => {
    ex.send(200, imageInspect(await ctx.engine.images.get(ex.params['name']!)));
  });

  router.add('POST', '/images/*name/tag', async (ex) => {
    const repo = ex.query.get('repo');
    if (!repo) throw new ApiError(400, 'repository name (repo) is required');
    const tag = ex.query.get('tag') || undefined;
    await ctx.engine.images.tag(ex.params['name']!, tag ? `${repo}:${tag}` : repo);
    ex.send(201);
  });

  // docker image prune / system prune: `filters={"dangling":["false"]}` is -a (every unused image).
  router.add('POST', '/images/prune', async (ex) => {
    const all = filtersParam(ex.query).get('dangling')?.[0] === 'false';
    const r = await ctx.engine.pruneImages({ all });
    const deleted = r.removed.flatMap((i) => [...i.untagged.map((u) => ({ Untagged: parseReference(u).familiar })), ...i.deleted.map((d) => ({ Deleted: d }))]);
    ex.send(200, { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: r.spaceReclaimed });
  });

  router.add('DELETE', '/images/*name', async (ex) => {
    const result = await ctx.engine.images.remove(ex.params['name']!, { force: boolParam(ex.query, 'force') });
    ex.send(200, [
      ...result.untagged.map((u) => ({ Untagged: parseReference(u).familiar })),
      ...result.deleted.map((d) => ({ Deleted: d })),
    ]);
  });
}
