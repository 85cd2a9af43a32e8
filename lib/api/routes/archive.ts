/**
 * `/containers/{id}/archive`: HEAD (the path's stat in `X-Docker-Container-Path-Stat`), GET (its
 * tar, the same header) and PUT (a tar extracted under a directory), as docker's `cp` and
 * testcontainers' copyFilesToContainer use them; the engine does the work (lib/engine/archive.ts).
 */
import { pipeline } from 'node:stream/promises';
import { ArchiveError, NsboxError } from '../../errors.js';
import { statHeader } from '../../engine/archive-read.js';
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import type { Exchange } from '../exchange.js';
import type { Router } from '../router.js';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function pathOf(ex: Exchange): string {
  const path = ex.query.get('path');
  if (!path) throw new ApiError(400, 'path is required');
  return path;
}

const flag = (ex: Exchange, name: string): boolean => ['1', 'true', 'True'].includes(ex.query.get(name) ?? '');

/** docker's 400 for what the client asked wrong (not a directory, an unsafe entry); the rest as the engine's errors map. */
function asApiError(e: unknown): unknown {
  if (e instanceof ArchiveError || (e instanceof NsboxError && e.code === 'ENOTDIR')) return new ApiError(400, e.message);
  return e;
}

export function archiveRoutes(router: Router, ctx: ApiContext): void {
  const { engine } = ctx;
  // HEAD comes here too (the router answers HEAD with the GET route): the stat alone.
  router.add('GET', '/containers/:id/archive', async (ex) => {
    const path = pathOf(ex);
    try {
      if (ex.method === 'HEAD') {
        const stat = await engine.statPath(ex.params['id']!, path);
        ex.send(200, undefined, { [STAT_HEADER]: statHeader(stat) });
        return;
      }
      const { stat, tar } = await engine.getArchive(ex.params['id']!, path);
      const out = ex.stream(200, 'application/x-tar', { [STAT_HEADER]: statHeader(stat) });
      ex.signal.addEventListener('abort', () => tar.destroy(), { once: true });
      await pipeline(tar, out);
    } catch (e) {
      throw asApiError(e);
    }
  });
  router.add('PUT', '/containers/:id/archive', async (ex) => {
    const path = pathOf(ex);
    const body = ex.bodyStream();
    try {
      await engine.putArchive(ex.params['id']!, path, body, {
        noOverwriteDirNonDir: flag(ex, 'noOverwriteDirNonDir'),
        copyUIDGID: flag(ex, 'copyUIDGID'),
      });
    } catch (e) {
      // The client is still sending: the answer reaches it only once its body is taken (read and dropped).
      if (!body.readableEnded && !body.destroyed) await new Promise<void>((resolve) => body.once('end', resolve).once('close', resolve).once('error', () => resolve()).resume());
      throw asApiError(e);
    }
    ex.send(200);
  });
}
