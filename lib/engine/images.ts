/**
 * The engine's images: one id-prefix resolver, and pull, tag, import, remove and prune with their
 * events (docker's pull, tag, untag, delete, import), so the CLI and the API emit none by hand.
 * The work is the image store's (`Image`); what the engine adds is which containers use an image.
 */
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.js';
import { importImage, type ImportImageOptions, type ImportSource } from '../build/index.js';
import { Image, type PullOptions } from '../image/image.js';
import type { PushOptions, PushResult } from '../image/push.js';
import { isDigest, parseReference } from '../image/reference.js';
import { Store, type JournalEntry } from '../storage/index.js';
import { isRunning } from './container-status.js';
import { imageHistory, type HistoryEntry } from './history.js';
import type { EngineContext } from './engine-context.js';

export interface RemovedImages {
  untagged: string[];
  deleted: string[];
}

export class EngineImages {
  readonly #ctx: EngineContext;
  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  #event(action: string, ref: string, attributes: Record<string, string> = {}): void {
    this.#ctx.emitEvent({ type: 'image', action, id: ref, attributes: { name: ref, ...attributes }, time: new Date() });
  }

  list(): Promise<Image[]> {
    return Image.list({ root: this.#ctx.root });
  }

  /**
   * The images `docker images` lists: without `all`, not the unnamed records of a named image's
   * other platforms (loaded or pulled with it from one index), which are part of that image.
   */
  async listed(opts: { all?: boolean } = {}): Promise<Image[]> {
    const images = await this.list();
    if (opts.all) return images;
    const siblings = platformSiblings(images);
    return images.filter((i) => !siblings.has(i.digest));
  }

  /**
   * An image by name, digest, or id (the config's digest), `sha256:` optional, or a unique prefix
   * of an id or digest, as `images` shows them. `byName`: it was named (not by id or digest).
   */
  async find(ref: string): Promise<{ image: Image; byName: boolean }> {
    const root = this.#ctx.root;
    try {
      return { image: await Image.get(ref, { root }), byName: !isDigest(ref) && !ref.includes('@') };
    } catch (e) {
      // A 64-hex id is no valid name: a ValidationError, not a NotFoundError.
      const hex = /^(?:sha256:)?([0-9a-f]{1,64})$/.exec(ref)?.[1];
      if (!hex || !(e instanceof NotFoundError || e instanceof ValidationError)) throw e;
      const hits = (await this.list()).filter((i) => [i.id, i.digest].some((d) => d.slice('sha256:'.length).startsWith(hex)));
      if (hits.length === 0) throw new NotFoundError(`No such image: ${ref}`, { code: 'ENOENT' });
      // Two manifests of one config (a pull after a load) share an id: only their digests tell them apart.
      if (hits.length > 1) throw new ValidationError(`${ref} names ${hits.length} images (${hits.map((i) => i.digest).join(', ')}): give more of a digest`, 'image');
      return { image: hits[0]!, byName: false };
    }
  }

  async get(ref: string): Promise<Image> {
    return (await this.find(ref)).image;
  }

  async pull(ref: string, opts: Omit<PullOptions, 'root'> = {}): Promise<Image> {
    const image = await Image.pull(ref, { ...opts, root: this.#ctx.root });
    this.#event('pull', parseReference(ref).familiar);
    return image;
  }

  /**
   * docker push: the image named `ref` to its registry (`latest` when untagged). `allTags`: every
   * tag of `ref`'s repository in the store, one push each, in name order (docker's `push -a`).
   */
  async push(ref: string, opts: PushOptions & { allTags?: boolean; onPushed?: (r: PushResult) => void } = {}): Promise<PushResult[]> {
    const { allTags, onPushed, ...pushOpts } = opts;
    const target = parseReference(ref);
    let refs = [target.toString()];
    if (allTags) {
      if (target.digest || ref.includes(':') && ref.lastIndexOf(':') > ref.lastIndexOf('/')) {
        throw new ValidationError(`tag can't be used with --all-tags/-a`, 'reference');
      }
      refs = (await this.list()).flatMap((i) => i.names).filter((n) => n.startsWith(`${target.name}:`)).sort();
      if (!refs.length) throw new NotFoundError(`An image does not exist locally with the tag: ${target.name}`, { code: 'ENOENT' });
    }
    const out: PushResult[] = [];
    for (const r of refs) {
      const result = await Image.push(r, { ...pushOpts, root: this.#ctx.root });
      this.#event('push', parseReference(r).familiar);
      onPushed?.(result);
      out.push(result);
    }
    return out;
  }

  /** docker load: a docker-archive or oci-archive tar (a file or a stream); a 'load' event for each image. */
  async load(source: string | NodeJS.ReadableStream): Promise<Image[]> {
    const images = await Image.load(source, { root: this.#ctx.root });
    for (const i of images) this.#event('load', i.names[0] ? parseReference(i.names[0]).familiar : i.id);
    return images;
  }

  /** docker save: the image (by name, id or a unique prefix) as a docker-archive or oci-archive tar. */
  async save(ref: string, file: string, opts: { format?: 'docker' | 'oci' } = {}): Promise<void> {
    const image = await this.get(ref);
    await image.save(file, opts);
    this.#event('save', ref);
  }

  /** docker history: the image's entries, newest first (`<missing>` for layers no local image tops). */
  async history(ref: string): Promise<HistoryEntry[]> {
    return imageHistory(await this.get(ref), await this.list());
  }

  /** A tag's journal: every image it pointed to, oldest first. */
  log(ref: string): Promise<JournalEntry[]> {
    return Image.log(ref, { root: this.#ctx.root });
  }

  /**
   * Moves a tag back along its journal (`to`: a digest from it, or -N; default -1), and with `push`
   * on its registry too. Containers keep the image they were made from (their records name it by
   * digest). A 'tag' event for the name.
   */
  async rollback(ref: string, opts: { to?: string | number; push?: boolean | PushOptions } = {}): Promise<{ from: string | undefined; to: string; pushed?: PushResult }> {
    const r = await Image.rollback(ref, { ...opts, root: this.#ctx.root });
    this.#event('tag', parseReference(ref).familiar, { rollback: r.to });
    if (r.pushed) this.#event('push', parseReference(ref).familiar);
    return r;
  }

  async tag(ref: string, target: string): Promise<void> {
    const image = await this.get(ref);
    const to = parseReference(target);
    await image.tag(to.toString());
    this.#event('tag', to.familiar);
  }

  async import(source: ImportSource, opts: Omit<ImportImageOptions, 'root'> = {}): Promise<Image> {
    const image = await importImage(source, { ...opts, root: this.#ctx.root });
    this.#event('import', image.id, image.names[0] ? { name: parseReference(image.names[0]).familiar } : {});
    return image;
  }

  /**
   * Removes an image name, or the image with its names. An image a container record uses (running
   * or not) is never removed, since its layers are that container's lower dirs: without `force`
   * that is refused; with it its names go and the image stays, dangling (`<none>`), as docker's
   * `rmi -f NAME` leaves it, until it is removed after its last container. By id, `force` is
   * refused too while a container runs it (docker: "cannot be forced").
   */
  async remove(ref: string, opts: { force?: boolean; forget?: boolean } = {}): Promise<RemovedImages> {
    const root = this.#ctx.root;
    const { image, byName } = await this.find(ref);
    // One of several names: only that name goes, whoever uses the image.
    if (byName && image.names.length > 1) return this.#removed(await Image.remove(ref, { root }));
    const users = (await this.#ctx.store.list({ all: true })).filter((r) => r.image?.digest === image.digest);
    const user = users.find(isRunning) ?? users[0];
    if (user && !opts.force) {
      throw new InvalidStateError(`conflict: unable to remove image ${ref}: image is in use by container ${user.id.slice(0, 12)} (${user.state}): remove the container first, or use -f`);
    }
    if (user && !byName && isRunning(user)) {
      throw new InvalidStateError(`conflict: unable to delete ${ref} (cannot be forced) - image is being used by running container ${user.id.slice(0, 12)}`);
    }
    if (user) {
      // By id with only stopped containers docker deletes the image, their layers kept by the
      // graph driver's own references; here nothing but image records keeps layers, so the image
      // stays dangling, as it does by name. Already dangling, there is nothing to do: say why.
      if (image.names.length === 0) {
        throw new InvalidStateError(`conflict: unable to delete ${ref} - image is being used by stopped container ${user.id.slice(0, 12)}: remove the container first`);
      }
      const untagged = await new Store({ root }).images.remove(image.digest, { namesOnly: true });
      return this.#removed({ untagged, deleted: [] });
    }
    return this.#removed(await Image.remove(byName ? ref : image.digest, { root, used: await this.#used(), ...(opts.force ? { force: true } : {}), ...(opts.forget ? { forget: true } : {}) }));
  }

  /** Digests of the images container records were made from. */
  async #used(): Promise<Set<string>> {
    return new Set((await this.#ctx.store.list({ all: true })).map((r) => r.image?.digest).filter((d): d is string => d !== undefined));
  }

  /**
   * docker image prune: removes the dangling images (no name), or with `all` every image, that no
   * container record uses. Returns, image by image, what went (docker's `Untagged` and `Deleted`:
   * the image id, then the blobs and layers no other image shares) and the sizes of the images.
   */
  async prune(opts: { all?: boolean; forget?: boolean } = {}): Promise<{ removed: RemovedImages[]; spaceReclaimed: number }> {
    const used = await this.#used();
    const out = { removed: [] as RemovedImages[], spaceReclaimed: 0 };
    const store = new Store({ root: this.#ctx.root });
    const images = await this.list();
    const sizes = new Map(images.map((i) => [i.digest, i.size]));
    const gone = new Set<string>();
    for (const image of images) {
      if (gone.has(image.digest) || used.has(image.digest) || (!opts.all && image.names.length > 0)) continue;
      // An unnamed platform of a named image's index is part of that image, not dangling.
      if (platformSiblings(images.filter((i) => !gone.has(i.digest))).has(image.digest)) continue;
      // an earlier version of a tag, kept for rollback, unless told to forget it (`--forget`);
      // read again each time: removing a named image drops its tags' journals
      const kept = (await store.images.keptByJournal()).get(image.digest)?.filter((n) => !image.names.includes(n));
      if (kept?.length && !opts.forget) continue;
      const r = this.#removed(await Image.remove(image.digest, { root: this.#ctx.root, used, ...(opts.forget ? { forget: true } : {}) }));
      for (const d of [image.digest, ...r.deleted]) gone.add(d);
      // r.deleted starts with the manifest; docker names the image by its id.
      out.removed.push({ untagged: r.untagged, deleted: [...new Set([image.id, ...r.deleted.slice(1)])] });
      // with the sizes of the other platforms of its index that went with it
      out.spaceReclaimed += [...new Set(r.deleted)].reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
    }
    return out;
  }

  #removed(removed: RemovedImages): RemovedImages {
    // A plain (uncompressed) layer's blob and its unpacked layer share a digest: docker says it once.
    const result = { untagged: removed.untagged, deleted: [...new Set(removed.deleted)] };
    for (const u of result.untagged) this.#event('untag', u);
    if (result.deleted.length) this.#event('delete', result.deleted[0]!);
    return result;
  }
}

/** Digests of the unnamed images whose index a named image keeps: that image's other platforms. */
export function platformSiblings(images: readonly Image[]): Set<string> {
  const named = new Set(images.filter((i) => i.names.length).map((i) => i.record.index).filter((d) => d !== undefined));
  return new Set(images.filter((i) => !i.names.length && i.record.index !== undefined && named.has(i.record.index)).map((i) => i.digest));
}
