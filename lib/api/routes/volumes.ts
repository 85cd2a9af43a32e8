/** Volumes: `/volumes` (list), `/volumes/create`, `/volumes/{name}` (inspect, DELETE); prune is with the other prunes. */
import * as z from 'zod';
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import { jsonBody } from '../json-body.js';
import { checkFilterKeys, filtersParam } from '../query.js';
import { ValidationError } from '../../errors.js';
import { filterVolumes, VOLUME_FILTERS, volumeLabels, type VolumeInfo } from '../../engine/volume-ops.js';
import type { Router } from '../router.js';

const VolumeCreateSchema = z.object({ Name: z.string().nullish(), Labels: z.record(z.string(), z.string()).nullish() }).loose();

export const volumeJson = (v: VolumeInfo) => ({
  CreatedAt: v.created,
  Driver: 'local',
  Labels: volumeLabels(v),
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
    checkFilterKeys(filters, VOLUME_FILTERS);
    let list;
    try {
      list = filterVolumes(await engine.volumes(), filters);
    } catch (e) {
      if (e instanceof ValidationError) throw new ApiError(400, e.message);
      throw e;
    }
    ex.send(200, { Volumes: list.map(volumeJson), Warnings: null });
  });
  router.add('POST', '/volumes/create', async (ex) => {
    const body = await jsonBody(ex, VolumeCreateSchema, 'volume create');
    ex.send(201, volumeJson(await engine.createVolume(body.Name || undefined, body.Labels ? { labels: body.Labels } : {})));
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
