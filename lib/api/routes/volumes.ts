/** Volumes: `/volumes` (list), `/volumes/create`, `/volumes/{name}` (inspect, DELETE); prune is with the other prunes. */
import * as z from 'zod';
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import { jsonBody } from '../json-body.js';
import type { Router } from '../router.js';

const VolumeCreateSchema = z.object({ Name: z.string().nullish() }).loose();

type VolumeInfo = { name: string; anonymous: boolean; created: string; mountpoint: string };
const volumeJson = (v: VolumeInfo) => ({
  CreatedAt: v.created,
  Driver: 'local',
  Labels: v.anonymous ? { 'com.docker.volume.anonymous': '' } : {},
  Mountpoint: v.mountpoint,
  Name: v.name,
  Options: null,
  Scope: 'local',
});

export function volumeRoutes(router: Router, ctx: ApiContext): void {
  const { engine } = ctx;
  router.add('GET', '/volumes', async (ex) => {
    ex.send(200, { Volumes: (await engine.volumes()).map(volumeJson), Warnings: null });
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
