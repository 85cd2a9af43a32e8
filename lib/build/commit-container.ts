/**
 * docker commit: a container's writable layer (its overlay upper directory, whiteouts and opaque
 * directories as OCI writes them: step-layer.ts) as a new layer over its image, with the
 * container's command, environment and working directory in the new config, `changes` (Dockerfile
 * instructions, as `import --change`) on top, and a history entry saying who and why.
 */
import { existsSync } from 'node:fs';
import { Image } from '../image/image.js';
import { commitImage } from '../image/commit.js';
import { sealManifest } from '../image/provenance.js';
import { parseReference } from '../image/reference.js';
import { ImageConfigSchema, type ContainerConfig, type ImageConfig } from '../image/registry/manifest.js';
import { sha256, Store } from '../storage/index.js';
import { applyChanges } from './dockerfile/changes.js';
import { commitDiff } from './step-layer.js';

export interface CommitOptions {
  /** REPO[:TAG] to name the image; none leaves it dangling, as docker's. */
  reference?: string;
  /** The history's and the config's author (`-a`). */
  author?: string;
  /** The history entry's comment (`-m`). */
  comment?: string;
  /** Dockerfile instructions applied to the config (`-c`: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL). */
  changes?: string[];
}

export interface CommitSource {
  /** The container's overlay upper directory (absent for a container never started). */
  upper: string;
  /** Digest of the image the container was made from. */
  image: string;
  containerId: string;
  /** What the container ran with, where it set it over the image's defaults. */
  command?: string[] | undefined;
  entrypoint?: string[] | undefined;
  env?: string[] | undefined;
  cwd?: string | undefined;
  root: string;
}

function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  const out = new Map(base.map((e) => [e.slice(0, e.indexOf('=')), e]));
  for (const e of over) out.set(e.slice(0, e.indexOf('=')), e);
  return [...out.values()];
}

export async function commitContainer(src: CommitSource, opts: CommitOptions = {}): Promise<Image> {
  const store = await Store.open({ root: src.root });
  const base = await Image.get(src.image, { root: src.root });
  const startedOn = new Date().toISOString();
  return store.withLease(async () => {
    const parentChain = base.layers.at(-1)?.chainId;
    const layer = existsSync(src.upper) ? await commitDiff(store, src.upper, parentChain) : undefined;
    const now = new Date().toISOString();
    const config: ContainerConfig = structuredClone(base.config.config ?? {});
    if (src.entrypoint) {
      config.Entrypoint = src.entrypoint;
      if (!src.command) config.Cmd = null;
    }
    if (src.command) config.Cmd = src.command;
    if (src.env?.length) config.Env = mergeEnv(config.Env ?? [], src.env);
    if (src.cwd) config.WorkingDir = src.cwd;
    const changed = applyChanges(config, opts.changes ?? []);
    const createdBy = [...(changed.Entrypoint ?? []), ...(src.command ?? changed.Cmd ?? [])].join(' ');
    const history = [
      ...(base.config.history ?? []),
      {
        created: now,
        created_by: createdBy,
        ...(opts.author ? { author: opts.author } : {}),
        ...(opts.comment ? { comment: opts.comment } : {}),
        ...(layer ? {} : { empty_layer: true }),
      },
    ];
    const cfg: ImageConfig = ImageConfigSchema.parse({
      ...structuredClone(base.config),
      created: now,
      ...(opts.author ? { author: opts.author } : {}),
      container: src.containerId,
      config: changed,
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, ...(layer ? [layer.diffId] : [])] },
      history,
    });
    const layers = [...base.layers.map((l) => ({ ...l })), ...(layer ? [layer] : [])];
    const configBytes = Buffer.from(JSON.stringify(cfg));
    const configDigest = sha256(configBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const names = opts.reference ? [parseReference(opts.reference).toString()] : [];
    const source = changed.Labels?.['org.opencontainers.image.source'];
    const sealed = sealManifest(manifest, {
      kind: 'commit',
      created: now,
      startedOn,
      author: opts.author,
      base: { name: base.names[0] ? parseReference(base.names[0]).familiar : base.digest, digest: base.digest },
      ...(source ? { source } : {}),
      parameters: {
        container: src.containerId,
        ...(opts.comment ? { comment: opts.comment } : {}),
        ...(opts.changes?.length ? { changes: opts.changes } : {}),
        ...(layer ? { layer: layer.diffId } : {}),
      },
    }, cfg, names);
    const loaded = await commitImage(
      store,
      {
        manifest: sealed.manifest,
        config: { bytes: configBytes, digest: configDigest, parsed: cfg },
        layers: layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, member: { file: store.blobs.path(l.digest), digest: l.digest, size: l.size } })),
        extra: sealed.extra,
        names,
        index: sealed.index,
      },
      names,
      { by: 'commit' },
    );
    return Image.get(loaded.digest, { root: src.root });
  });
}
