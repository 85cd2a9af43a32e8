/**
 * nsbox port CONTAINER [PRIVATE_PORT[/PROTO]]: the published ports of a running container, as
 * docker prints them (`80/tcp -> 0.0.0.0:8080`, or for one port only `0.0.0.0:8080`).
 */
import { NotFoundError, ValidationError } from '../../errors.js';
import { hasIpv6, portLines } from '../../network/docker-ports.js';
import { parsePortKey } from '../../network/port-spec.js';
import { parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';
import { writeOut } from '../output.js';

export default async function port(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { stopAtPositional: false });
  const [ref, which, ...rest] = p.positional;
  if (!ref || rest.length) throw new ValidationError('"nsbox port" requires 1 or 2 arguments: CONTAINER [PRIVATE_PORT[/PROTO]]', 'container');
  const only = which === undefined ? undefined : parsePortKey(which, 'port');
  const r = await (await openEngine()).get(ref);
  const running = r.state === 'running' || r.state === 'paused';
  const lines = running ? portLines(r.network?.state?.ports ?? [], only, { ipv6: hasIpv6(r.network?.state) }) : [];
  if (only && !lines.length) throw new NotFoundError(`no public port '${only.containerPort}/${only.protocol}' published for ${ref}`);
  writeOut(lines.map((l) => `${l}\n`).join(''));
  return 0;
}
