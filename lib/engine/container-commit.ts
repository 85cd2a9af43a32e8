/**
 * The engine's `commit` and `diff` (docker's): the record's writable layer, the container frozen
 * while its layer is read (docker's default `--pause`), a 'commit' event for the container.
 */
import { join } from 'node:path';
import { commitContainer, type CommitOptions } from '../build/commit-container.js';
import { InvalidStateError } from '../errors.js';
import { Image } from '../image/image.js';
import { containerChanges, type Change } from './changes.js';
import { isRunning } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import { cgroupOfRecord } from './lifecycle.js';
import type { ContainerRecord } from './records.js';

const envList = (env: Record<string, string> | string[] | undefined): string[] | undefined =>
  env === undefined ? undefined : Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);

function imageOf(r: ContainerRecord): { ref: string; digest: string } {
  if (!r.image) throw new InvalidStateError(`container ${r.id.slice(0, 12)} runs a root file system of its own, not an image: there is no image to commit or compare it to`);
  return r.image;
}

export async function commitRecord(ctx: EngineContext, ref: string, opts: CommitOptions & { pause?: boolean } = {}): Promise<Image> {
  const r = await ctx.store.get(ref);
  const image = imageOf(r);
  const freeze = opts.pause !== false && isRunning(r) && r.state !== 'paused';
  const cg = freeze ? await cgroupOfRecord(r) : undefined;
  await cg?.freeze();
  let committed: Image;
  try {
    const o = r.options;
    committed = await commitContainer(
      {
        upper: join(ctx.store.layout.container(r.id), 'upper'),
        image: image.digest,
        containerId: r.id,
        command: o.command,
        entrypoint: o.entrypoint,
        env: envList(o.env as Record<string, string> | string[] | undefined),
        cwd: o.cwd,
        root: ctx.root,
      },
      opts,
    );
  } finally {
    await cg?.thaw();
  }
  ctx.emit('commit', r, { comment: opts.comment ?? '', imageID: committed.id });
  return committed;
}

export async function changesOf(ctx: EngineContext, ref: string): Promise<Change[]> {
  const r = await ctx.store.get(ref);
  const image = await Image.get(imageOf(r).digest, { root: ctx.root });
  return containerChanges(join(ctx.store.layout.container(r.id), 'upper'), await image.layerDirs());
}
