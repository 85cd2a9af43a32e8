/**
 * `POST /build` as the docker CLI's legacy builder path and dockerode's buildImage use it: the
 * body is a tar of the context (plain or gzipped), read whole before anything is built (as dockerd
 * reads it); `t` (repeated), `dockerfile`, `buildargs` and `labels` (JSON objects), `target`,
 * `nocache`, `pull`, `cachefrom` (a JSON array of images), `q`, `networkmode`, and `X-Registry-Config` (credentials by registry for the
 * base images' pulls). The answer is JSON lines: `stream` (docker's legacy output),
 * `aux` with the image id, and `errorDetail` for a build that failed once the stream began.
 */
import * as z from 'zod';
import { buildImage } from '../../build/build.js';
import { legacyProgress, shortBuildId } from '../../build/legacy-output.js';
import { parseReference } from '../../image/reference.js';
import { ApiError } from '../api-error.js';
import type { ApiContext } from '../api-context.js';
import { boolParam } from '../query.js';
import { registryConfigHeader } from '../registry-auth.js';
import type { Router } from '../router.js';

const StringMap = z.record(z.string(), z.string().nullable());

function jsonMap(q: URLSearchParams, name: string): Record<string, string> {
  const raw = q.get(name);
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // SyntaxError, all JSON.parse throws: the client's bad JSON
    throw new ApiError(400, `${name}: not a JSON object`);
  }
  const r = StringMap.safeParse(parsed);
  if (!r.success) throw new ApiError(400, `${name}: expected a JSON object of strings`);
  // docker: a null build arg takes the value from the daemon's environment; nsbox leaves it unset
  return Object.fromEntries(Object.entries(r.data).filter((kv): kv is [string, string] => kv[1] !== null));
}

/** `cachefrom`: a JSON array of image names, as the docker CLI sends it. */
function cacheFromParam(q: URLSearchParams): string[] {
  const raw = q.get('cachefrom');
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // SyntaxError, all JSON.parse throws: the client's bad JSON
    throw new ApiError(400, 'cachefrom: not a JSON array');
  }
  const r = z.array(z.string()).safeParse(parsed);
  if (!r.success) throw new ApiError(400, 'cachefrom: expected a JSON array of image names');
  return r.data.filter((s) => s !== '');
}

export function buildRoutes(router: Router, ctx: ApiContext): void {
  router.add('POST', '/build', async (ex) => {
    const q = ex.query;
    const tags = q.getAll('t').filter((t) => t !== '');
    for (const t of tags) parseReference(t);
    const quiet = boolParam(q, 'q');
    const network = q.get('networkmode');
    const target = q.get('target');
    const registryConfig = registryConfigHeader(ex.headers['x-registry-config']);
    let out: import('node:stream').Writable | undefined;
    const write = (m: unknown) => {
      out ??= ex.stream(200, 'application/json');
      out.write(`${JSON.stringify(m)}\r\n`);
    };
    const progress = legacyProgress((s) => write({ stream: s }), quiet);
    try {
      const image = await buildImage({
        context: ex.bodyStream(),
        dockerfile: q.get('dockerfile') || 'Dockerfile',
        tags,
        buildArgs: jsonMap(q, 'buildargs'),
        labels: jsonMap(q, 'labels'),
        ...(target ? { target } : {}),
        noCache: boolParam(q, 'nocache'),
        pull: boolParam(q, 'pull'),
        cacheFrom: cacheFromParam(q),
        ...(registryConfig ? { registryAuth: registryConfig } : {}),
        ...(network && network !== 'default' && network !== 'bridge' ? { network } : {}),
        root: ctx.engine.root,
        onProgress: (e) => {
          if (e.type === 'warning') write({ stream: `${e.message}\n` });
          else progress(e);
        },
      });
      write({ aux: { ID: image.id } });
      // the CLI's -q prints what the stream says: the id alone
      if (quiet) write({ stream: `${image.id}\n` });
      else {
        write({ stream: `Successfully built ${shortBuildId(image.id)}\n` });
        for (const t of tags) write({ stream: `Successfully tagged ${parseReference(t).familiar}\n` });
      }
      out!.end();
    } catch (e) {
      if (!out) throw e;
      const message = (e as Error).message;
      write({ errorDetail: { message }, error: message });
      out.end();
    }
  });
}
