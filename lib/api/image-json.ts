/** Images in docker's JSON (`/images/json` entries, `/images/{name}/json`); the engine finds them. */
import type { Image } from '../image/image.js';
import { parseReference } from '../image/reference.js';

const unix = (iso: string | undefined) => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);

/** The names docker shows: `busybox:latest`, `127.0.0.1:5000/app:1`; and `repo@digest` for each repository. */
export function imageNames(image: Image): { tags: string[]; digests: string[] } {
  const tags: string[] = [];
  const repos = new Set<string>();
  for (const n of image.names) {
    const r = parseReference(n);
    const suffix = (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
    repos.add(r.familiar.slice(0, r.familiar.length - suffix.length));
    if (r.tag && !r.digest) tags.push(r.familiar);
  }
  return { tags, digests: [...repos].map((repo) => `${repo}@${image.digest}`) };
}

export function imageSummary(image: Image) {
  const { tags, digests } = imageNames(image);
  return {
    Id: image.id,
    ParentId: '',
    RepoTags: tags,
    RepoDigests: digests,
    Created: unix(image.created),
    Size: image.size,
    SharedSize: -1,
    VirtualSize: image.size,
    Labels: image.config.config?.Labels ?? {},
    Containers: -1,
  };
}

export function imageInspect(image: Image) {
  const { tags, digests } = imageNames(image);
  const c = image.config.config ?? {};
  const config = {
    Hostname: '', Domainname: '', User: c.User ?? '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
    ExposedPorts: c.ExposedPorts ?? null, Tty: false, OpenStdin: false, StdinOnce: false, Env: c.Env ?? null, Cmd: c.Cmd ?? null,
    Image: '', Volumes: c.Volumes ?? null, WorkingDir: c.WorkingDir ?? '', Entrypoint: c.Entrypoint ?? null, OnBuild: c.OnBuild ?? null,
    Labels: c.Labels ?? null, ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
  };
  return {
    Id: image.id,
    RepoTags: tags,
    RepoDigests: digests,
    Parent: '',
    Comment: image.config.history?.at(-1)?.comment ?? '',
    Created: image.created ?? '0001-01-01T00:00:00Z',
    Container: '',
    ContainerConfig: config,
    DockerVersion: '',
    Author: image.config.author ?? '',
    Config: config,
    Architecture: image.config.architecture,
    ...(image.config.variant ? { Variant: image.config.variant } : {}),
    Os: image.config.os,
    Size: image.size,
    VirtualSize: image.size,
    GraphDriver: { Name: 'overlay2', Data: null },
    RootFS: { Type: 'layers', Layers: image.config.rootfs.diff_ids },
    Metadata: { LastTagTime: image.record.addedAt ?? '0001-01-01T00:00:00Z' },
  };
}

