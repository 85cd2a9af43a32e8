/** Container endpoints without streams: list, create, inspect, and the lifecycle verbs. */
import { NotFoundError, NsboxError, ValidationError } from '../../errors.js';
import { parseReference } from '../../image/reference.js';
import { execFailureCode } from '../../engine/container-status.js';
import { checkContainerFilters, matchesContainerFilters } from '../../engine/container-filters.js';
import type { ContainerRecord } from '../../engine/records.js';
import { ApiError } from '../api-error.js';
import type { ApiContext } from '../api-context.js';
import { containerInspect, containerSummary } from '../container-json.js';
import { CreateBodySchema, createRequestOf } from '../create-body.js';
import { jsonBody } from '../json-body.js';
import { boolParam, filtersParam, intParam } from '../query.js';
import type { Router } from '../router.js';

/** The image's name as docker prints it in "No such image: busybox:latest". */
function familiar(image: string): string {
  try {
    return parseReference(image).familiar;
  } catch (e) {
    // Not a reference (a rootfs path, say): named as given.
    if (e instanceof ValidationError) return image;
    throw e;
  }
}

/**
 * A command that cannot be run, in the words the docker CLI looks for to exit with 127 ("no such
 * file or directory") or 126 ("permission denied") instead of 125: the code nsbox's own CLI
 * exits with (failureExitCode).
 */
function startError(id: string, e: unknown): unknown {
  const code = execFailureCode(e);
  if (code === undefined) return e;
  const err = e as NsboxError;
  const why = code === 127 ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : `permission denied (${err.message})`;
  return new ApiError(400, `failed to start container ${id}: exec: ${JSON.stringify(err.path ?? '')}: ${why}`);
}

export function containerRoutes(router: Router, ctx: ApiContext): void {
  const { engine } = ctx;

  router.add('GET', '/containers/json', async (ex) => {
    const filters = filtersParam(ex.query);
    // A filter nsbox cannot answer is a 400, never ignored: an ignored one lists everything.
    try {
      checkContainerFilters(filters);
    } catch (e) {
      if (e instanceof ValidationError) throw new ApiError(400, e.message);
      throw e;
    }
    const all = boolParam(ex.query, 'all') || filters.has('status');
    const limit = intParam(ex.query, 'limit');
    let list = (await engine.list({ all })).filter((r) => matchesContainerFilters(r, filters));
    list.sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
    if (limit !== undefined && limit > 0) list = list.slice(0, limit);
    const now = Date.now();
    ex.send(200, list.map((r) => containerSummary(r, now)));
  });

  router.add('POST', '/containers/create', async (ex) => {
    const body = await jsonBody(ex, CreateBodySchema, 'container config');
    const { request, warnings, bindSources } = createRequestOf(body, ex.query.get('name') || undefined);
    let record: ContainerRecord;
    try {
      record = await engine.create({ ...request, makeBindSources: bindSources });
    } catch (e) {
      // The docker CLI pulls on this 404 and creates again; its message names the image as typed.
      if (e instanceof NotFoundError && e.message.startsWith('No such image')) throw new NotFoundError(`No such image: ${familiar(body.Image)}`);
      throw e;
    }
    ex.send(201, { Id: record.id, Warnings: warnings });
    // Its cgroup, made in the time the client takes to ask for the start (docker run attaches and waits first).
    engine.prepareStart(record);
  });

  router.add('GET', '/containers/:id/json', async (ex) => {
    const r = await engine.get(ex.params['id']!);
    const inspect = containerInspect(r, engine.pidOf(r), engine.logPath(r));
    ex.send(200, { ...inspect, ExecIDs: ctx.execs.ofContainer(r.id).map((e) => e.id) });
  });

  router.add('POST', '/containers/:id/start', async (ex) => {
    // The record is read once, by the start (not here first): its id comes back through awaitAttach.
    let id = ex.params['id']!;
    try {
      // As docker's daemon, this server removes the --rm containers it starts (the engine also
      // removes one whose start failed: `docker run --rm` waits for that removal).
      await engine.start(id, {
        awaitAttach: (found) => (ctx.attachWaiters.get((id = found)) ?? 0) > 0,
        claimRemoval: true,
        onShimStarted: (bundle) => ctx.shimStarts.emit('started', id, bundle),
      });
    } catch (e) {
      throw startError(id, e);
    }
    ex.send(204);
  });

  router.add('POST', '/containers/:id/stop', async (ex) => {
    const t = intParam(ex.query, 't');
    const signal = ex.query.get('signal') || undefined;
    await engine.stop(ex.params['id']!, { ...(t !== undefined && t >= 0 ? { timeout: t } : {}), ...(signal ? { signal } : {}) });
    ex.send(204);
  });

  router.add('POST', '/containers/:id/restart', async (ex) => {
    const t = intParam(ex.query, 't');
    await engine.restart(ex.params['id']!, t !== undefined && t >= 0 ? { timeout: t } : {});
    ex.send(204);
  });

  router.add('POST', '/containers/:id/kill', async (ex) => {
    await engine.kill(ex.params['id']!, ex.query.get('signal') || 'SIGKILL');
    ex.send(204);
  });

  router.add('POST', '/containers/:id/pause', async (ex) => {
    await engine.pause(ex.params['id']!);
    ex.send(204);
  });

  router.add('POST', '/containers/:id/unpause', async (ex) => {
    await engine.unpause(ex.params['id']!);
    ex.send(204);
  });

  router.add('POST', '/containers/:id/rename', async (ex) => {
    const name = ex.query.get('name');
    if (!name) throw new ApiError(400, 'Neither old nor new names may be empty');
    await engine.rename(ex.params['id']!, name);
    ex.send(204);
  });

  router.add('POST', '/containers/:id/resize', async (ex) => {
    const h = intParam(ex.query, 'h');
    const w = intParam(ex.query, 'w');
    if (!h || !w || h <= 0 || w <= 0) throw new ApiError(400, 'resize needs h and w, both positive');
    await engine.resize(ex.params['id']!, w, h);
    ex.send(200);
  });

  router.add('DELETE', '/containers/:id', async (ex) => {
    await engine.remove(ex.params['id']!, { force: boolParam(ex.query, 'force'), volumes: boolParam(ex.query, 'v') });
    ex.send(204);
  });

  router.add('POST', '/containers/prune', async (ex) => {
    const { containers, failed } = await engine.prune();
    // docker's answer has no place for them: the daemon's log does.
    for (const f of failed) engine.emit('warning', `prune: container ${f.id} could not be removed: ${f.error}`);
    ex.send(200, { ContainersDeleted: containers, SpaceReclaimed: 0 });
  });
}
