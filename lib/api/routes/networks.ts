/**
 * Networks: `GET /networks` (filters name, id, label, driver, type, dangling), `GET /networks/{id}`
 * (with `Containers`), `POST /networks/create`, `DELETE /networks/{id}`, `POST /networks/prune`,
 * `POST /networks/{id}/connect|disconnect` (the engine's, lib/engine/network-connect.ts).
 * docker's `host` and `none` networks are listed and inspected as docker has them (they are modes).
 */
import * as z from 'zod';
import { InvalidStateError } from '../../errors.js';
import { networkContainers } from '../../network.js';
import { PSEUDO_NETWORKS, createOptionsOfBody, networkJson, pseudoNetwork, type NetworkJson } from '../../network/network-json.js';
import { matchesPseudoNetwork, type NetworkFilters } from '../../network/network-filters.js';
import { NetworkStore } from '../../network/network-store.js';
import { refuseRootlessNetworkCreate } from '../../network/rootless-container.js';
import { isPrivileged } from '../../privilege.js';
import type { ApiContext } from '../api-context.js';
import { ApiError } from '../api-error.js';
import { jsonBody } from '../json-body.js';
import { filtersParam } from '../query.js';
import type { Router } from '../router.js';

/** `POST /networks/{id}/connect`: the container and its endpoint (Aliases, IPAMConfig.IPv4Address/IPv6Address; Links are not kept). */
const ConnectBodySchema = z.looseObject({
  Container: z.string().min(1, 'a container is required'),
  EndpointConfig: z
    .looseObject({
      Aliases: z.array(z.string()).nullish(),
      IPAMConfig: z.looseObject({ IPv4Address: z.string().nullish(), IPv6Address: z.string().nullish() }).nullish(),
    })
    .nullish(),
});
const DisconnectBodySchema = z.looseObject({ Container: z.string().min(1, 'a container is required'), Force: z.boolean().nullish() });

const FILTER_KEYS = ['name', 'id', 'label', 'driver', 'type', 'dangling', 'scope'];

function filtersOf(q: URLSearchParams, allowed: readonly string[]): NetworkFilters & { scope?: string[] } {
  const out: NetworkFilters & { scope?: string[] } = {};
  for (const [k, v] of filtersParam(q)) {
    if (!allowed.includes(k)) throw new ApiError(400, `invalid filter '${k}'`);
    if (k === 'dangling') {
      const b = v.at(-1) ?? '';
      if (!['true', 'false', '1', '0'].includes(b)) throw new ApiError(400, `invalid filter 'dangling=${b}'`);
      out.dangling = b === 'true' || b === '1';
    } else (out as Record<string, string[]>)[k] = v;
  }
  return out;
}

export function networkRoutes(router: Router, ctx: ApiContext): void {
  let opened: Promise<NetworkStore> | undefined;
  const store = () => (opened ??= NetworkStore.open({ root: ctx.engine.root }));

  router.add('GET', '/networks', async (ex) => {
    const { scope, ...filters } = filtersOf(ex.query, FILTER_KEYS);
    if (scope?.length && !scope.includes('local')) return ex.send(200, []);
    const s = await store();
    await s.ensureDefault();
    const list: NetworkJson[] = (await s.list(filters)).map((n) => networkJson(n));
    for (const n of PSEUDO_NETWORKS) if (matchesPseudoNetwork(n, filters)) list.push(n);
    ex.send(200, list);
  });

  router.add('GET', '/networks/:id', async (ex) => {
    const ref = ex.params['id']!;
    const pseudo = pseudoNetwork(ref);
    if (pseudo) return ex.send(200, pseudo);
    const s = await store();
    const n = ref === 'bridge' ? await s.ensureDefault() : await s.get(ref);
    ex.send(200, networkJson(n, await networkContainers(s, n)));
  });

  router.add('POST', '/networks/create', async (ex) => {
    const body = await jsonBody(ex, z.unknown(), 'network create');
    const options = createOptionsOfBody(body);
    if (!isPrivileged()) refuseRootlessNetworkCreate(options.name);
    const n = await (await store()).create(options);
    ctx.engine.emitEvent({ type: 'network', action: 'create', id: n.id, attributes: { name: n.name, type: n.driver }, time: new Date() });
    ex.send(201, { Id: n.id, Warning: '' });
  });

  router.add('DELETE', '/networks/:id', async (ex) => {
    const pseudo = pseudoNetwork(ex.params['id']!);
    if (pseudo) throw new InvalidStateError(`${pseudo.Name} is a pre-defined network and cannot be removed`);
    const n = await (await store()).remove(ex.params['id']!);
    ctx.engine.emitEvent({ type: 'network', action: 'destroy', id: n.id, attributes: { name: n.name, type: n.driver }, time: new Date() });
    ex.send(204);
  });

  router.add('POST', '/networks/:id/connect', async (ex) => {
    const body = await jsonBody(ex, ConnectBodySchema, 'network connect');
    if (pseudoNetwork(ex.params['id']!)) throw new InvalidStateError(`container cannot be disconnected from host network or connected to host network`);
    const e = body.EndpointConfig ?? {};
    const ipv4Address = e.IPAMConfig?.IPv4Address || undefined;
    const ipv6Address = e.IPAMConfig?.IPv6Address || undefined;
    await ctx.engine.connect(body.Container, ex.params['id']!, { aliases: e.Aliases ?? [], ...(ipv4Address ? { ipv4Address } : {}), ...(ipv6Address ? { ipv6Address } : {}) });
    ex.send(200);
  });

  router.add('POST', '/networks/:id/disconnect', async (ex) => {
    const body = await jsonBody(ex, DisconnectBodySchema, 'network disconnect');
    if (pseudoNetwork(ex.params['id']!)) throw new InvalidStateError(`container cannot be disconnected from host network or connected to host network`);
    await ctx.engine.disconnect(body.Container, ex.params['id']!, { force: body.Force ?? false });
    ex.send(200);
  });

  router.add('POST', '/networks/prune', async (ex) => {
    const { label, until } = filtersOf(ex.query, ['label', 'until']);
    const removed = await (await store()).prune({ ...(label ? { label } : {}), ...(until ? { until } : {}) });
    for (const n of removed) ctx.engine.emitEvent({ type: 'network', action: 'destroy', id: n.id, attributes: { name: n.name, type: n.driver }, time: new Date() });
    ex.send(200, { NetworksDeleted: removed.length ? removed.map((n) => n.name) : null });
  });
}
