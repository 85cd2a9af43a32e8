/**
 * docker commit, diff and history over the API: `POST /commit?container=&repo=&tag=&author=&comment=
 * &pause=&changes=` (201 `{"Id"}`), `GET /containers/{id}/changes` (`[{Path, Kind}]`, Kind 0 changed,
 * 1 added, 2 deleted) and `GET /images/{name}/history` (newest first, Created in seconds).
 */
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import { boolParam } from '../query.js';
import type { Router } from '../router.js';

const KIND = { C: 0, A: 1, D: 2 } as const;

export function commitRoutes(router: Router, ctx: ApiContext): void {
  router.add('POST', '/commit', async (ex) => {
    const container = ex.query.get('container');
    if (!container) throw new ApiError(400, 'container is required');
    const repo = ex.query.get('repo');
    const tag = ex.query.get('tag');
    const author = ex.query.get('author');
    const comment = ex.query.get('comment');
    const image = await ctx.engine.commit(container, {
      ...(repo ? { reference: tag ? `${repo}:${tag}` : repo } : {}),
      ...(author ? { author } : {}),
      ...(comment ? { comment } : {}),
      changes: ex.query.getAll('changes').flatMap((c) => c.split('\n')).filter((c) => c.trim() !== ''),
      pause: boolParam(ex.query, 'pause', true),
    });
    ex.send(201, { Id: image.id });
  });

  router.add('GET', '/containers/:id/changes', async (ex) => {
    const changes = await ctx.engine.changes(ex.params['id']!);
    ex.send(200, changes.map((c) => ({ Path: c.path, Kind: KIND[c.kind] })));
  });

  router.add('GET', '/images/*name/history', async (ex) => {
    const entries = await ctx.engine.images.history(ex.params['name']!);
    ex.send(200, entries.map((e) => ({
      Id: e.id,
      Created: e.created ? Math.floor(Date.parse(e.created) / 1000) : 0,
      CreatedBy: e.createdBy,
      Tags: e.tags.length ? e.tags.map((t) => t.replace(/^docker\.io\/(library\/)?/, '')) : null,
      Size: e.size,
      Comment: e.comment,
    })));
  });
}
