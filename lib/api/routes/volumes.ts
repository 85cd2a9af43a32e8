/** Volumes: `/volumes` (list), `/volumes/create`, `/volumes/{name}` (inspect, DELETE); prune is with the other prunes. */
import * as z from 'zod';
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import { jsonBody } from '../json-body.js';
import { checkFilterKeys, filtersParam, labelsMatch } from '../query.js';
import type { Router } from '../router.js';

const VolumeCreateSchema = z.object({ Name: z.string().nullish() }).loose();

type VolumeInfo = { name: string; anonymous: boolean; created: string; mountpoint: string };
const volumeJson = (v: VolumeInfo) => ({
  CreatedAt: v.created,
  Driver: 'local',
  Labels: (v.anonymous ? { 'com.docker.volume.anonymous': '' } : {}) as Record<string, string>,
  Mountpoint: v.mountpoint,
  Name: v.name,
  Options: null,
  Scope: 'local',
});

export function volumeRoutes(router: Router, ctx: ApiContext): void {
  const { engine } = ctx;
  // docker's filters name (a substring), label, dangling (used by no container), driver (local only).
  router.add('GET', '/volumes', async (ex) => {
    const filters = filtersParam(ex.query);
    checkFilterKeys(filters, ['name', 'label', 'dangling', 'driver']);
    const dangling = filters.get('dangling')?.at(-1);
    if (dangling !== undefined && !['true', 'false', '1', '0'].includes(dangling)) throw new ApiError(400, `invalid filter 'dangling=${dangling}'`);
    const list = (await engine.volumes()).filter((v) => {
      const json = volumeJson(v);
      if (!(filters.get('name') ?? []).every((n) => v.name.includes(n))) return false;
      if (!labelsMatch(json.Labels, filters.get('label') ?? [])) return false;
      if (dangling !== undefined && (v.usedBy.length === 0) !== (dangling === 'true' || dangling === '1')) return false;
      return (filters.get('driver') ?? []).every((d) => d === 'local');
    });
    ex.send(200, { Volumes: list.map(volumeJson), Warnings: null });
  });
  router.add('POST', '/volumes/create', async (ex) => {
    const body = await jsonBody(ex, VolumeCreateSchema, 'volume create');
    ex.send(201, volumeJson(await engine.createVolume(body.Name || undefined)));
  });
  router.add('GET', '/volumes/:name', async (ex) => {
    const v = (await engine.volumes()).find((x) => x.name === ex.params['name']);
    if (!v) throw new ApiError(404, `get ${ex.params['name']}: no such volume`);
    ex.send(200, volumeJson(v));
  });
  router.add('DELETE', '/volumes/:name', async (ex) => {
    await engine.removeVolume(ex.params['name']!);
    ex.send(204);
  });
}
