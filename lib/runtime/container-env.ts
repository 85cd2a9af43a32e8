/**
 * A container's environment and the PATH its programs are looked up in: the defaults docker gives
 * (PATH, HOSTNAME, HOME, TERM with a tty), then the image's Env, then what the options ask for.
 * The addon has no defaults of its own: every spawn plan carries its PATH from here.
 */
import { envObject } from './image-config.js';
import type { ResolvedImage } from './image-source.js';
import type { ContainerConfig } from './options.js';
import { buildEnv, parseUser } from './plan.js';
import { DEFAULT_PATH, pathFromEnv } from './env-path.js';

export { DEFAULT_PATH, pathFromEnv };


/** The environment of the container's processes, as `NAME=value` strings. */
export function containerEnv(config: ContainerConfig, id: string, image?: ResolvedImage): string[] {
  const hostname = config.hostname ?? id.slice(0, 12);
  const home = parseUser(config.user).uid === 0 ? '/root' : '/';
  return buildEnv(
    { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: home, ...(config.tty !== false ? { TERM: 'xterm' } : {}), ...envObject(image?.config.Env ?? []) },
    config.env,
  );
}

/** The PATH an environment sets (its last PATH=), else the default. */
