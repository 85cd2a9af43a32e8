/**
 * `POST /auth`: docker login's check. The credentials are tried against the registry (`GET /v2/`,
 * through a token when it wants one); the daemon keeps nothing, as docker's does not: the docker
 * CLI stores them in its own config.json and sends them back in X-Registry-Auth.
 */
import * as z from 'zod';
import { RegistryError } from '../../image/registry/errors.js';
import { verifyLogin } from '../../image/registry/login.js';
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import { jsonBody } from '../json-body.js';
import type { Router } from '../router.js';

const AuthBodySchema = z.looseObject({
  username: z.string().optional(),
  password: z.string().optional(),
  serveraddress: z.string().optional(),
  identitytoken: z.string().optional(),
});

export function authRoutes(router: Router, _ctx: ApiContext): void {
  router.add('POST', '/auth', async (ex) => {
    const body = await jsonBody(ex, AuthBodySchema, 'auth config');
    if (body.identitytoken) throw new ApiError(400, 'identity tokens are not supported by nsbox; give username and password');
    if (!body.username) throw new ApiError(400, 'username is required');
    const server = body.serveraddress || 'docker.io';
    try {
      await verifyLogin(server, { username: body.username, password: body.password ?? '' }, { signal: ex.signal });
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'UNAUTHORIZED') throw new ApiError(401, `login attempt to ${server} failed: ${e.message}`);
      throw e;
    }
    ex.send(200, { Status: 'Login Succeeded', IdentityToken: '' });
  });
}
