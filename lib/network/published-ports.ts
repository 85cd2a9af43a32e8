/**
 * Where the host reaches a container's published port, from the bindings its start got: shared by
 * the SDK's in-process containers and its reusable (engine) ones.
 */
import { NotFoundError } from '../errors.js';
import type { BoundPort } from './schemas.js';

/** Every binding of `containerPort`, as bound (`0.0.0.0`: every address; with `dual`, the container has IPv6 and such a port is on `::` too). */
export function bindingsOf(ports: readonly BoundPort[], containerPort: number, protocol: BoundPort['protocol'] = 'tcp', dual = false): Array<{ host: string; port: number }> {
  return ports
    .filter((p) => p.containerPort === containerPort && p.protocol === protocol)
    .flatMap((p) => (p.hostIp === '' && dual ? ['0.0.0.0', '::'] : [p.hostIp || '0.0.0.0']).map((host) => ({ host, port: p.hostPort })));
}

/** The first binding, an every-address one as loopback; NotFoundError (naming `id`) when it is not published. */
export function reachOf(ports: readonly BoundPort[], containerPort: number, protocol: BoundPort['protocol'], id: string): { host: string; port: number } {
  const b = bindingsOf(ports, containerPort, protocol)[0];
  if (!b) throw new NotFoundError(`port ${containerPort}/${protocol} of container ${id.slice(0, 12)} is not published`);
  return { host: b.host === '0.0.0.0' ? '127.0.0.1' : b.host === '::' ? '::1' : b.host, port: b.port };
}
