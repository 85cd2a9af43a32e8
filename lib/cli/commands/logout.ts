/** nsbox logout [SERVER]: removes the server's credentials from docker's config.json (and its helper). */
import { ValidationError } from '../../errors.js';
import { parseArgs } from '../args.js';

export default async function logout(argv: string[]): Promise<number> {
  const p = parseArgs(argv, []);
  if (p.positional.length > 1) throw new ValidationError('"nsbox logout" requires at most 1 argument.', 'server');
  const server = p.positional[0] ?? 'docker.io';
  const { logout: doLogout, registryHost } = await import('../../image/registry/login.js');
  const shown = registryHost(server) === 'docker.io' ? 'https://index.docker.io/v1/' : registryHost(server);
  if (await doLogout(server)) process.stdout.write(`Removing login credentials for ${shown}\n`);
  else process.stdout.write(`Not logged in to ${shown}\n`);
  return 0;
}
