/**
 * The `nsbox` command: docker's commands over the library. Each command lives in its own module,
 * loaded only when used, so that start-up stays lean. Exit codes as docker's: 125 for nsbox's own
 * errors, 126/127 when the command cannot be run, else the container's.
 */
import { NsboxError, ValidationError } from '../errors.js';
import * as z from 'zod';

// One-shot validation: zod's JIT (a generated parser per object schema) costs more than it saves
// in a process that parses each schema once or twice.
z.config({ jitless: true });

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<{ default: Command }>> = {
  pull: () => import('./commands/pull.js'),
  images: () => import('./commands/images.js'),
  rmi: () => import('./commands/rmi.js'),
  tag: () => import('./commands/tag.js'),
  save: () => import('./commands/save.js'),
  load: () => import('./commands/load.js'),
  run: () => import('./commands/run.js'),
  ps: () => import('./commands/ps.js'),
  rm: () => import('./commands/rm.js'),
  inspect: () => import('./commands/inspect.js'),
  logs: () => import('./commands/logs.js'),
  stop: () => import('./commands/stop.js'),
  start: () => import('./commands/start.js'),
  restart: () => import('./commands/restart.js'),
  kill: () => import('./commands/kill.js'),
  exec: () => import('./commands/exec.js'),
  pause: () => import('./commands/pause.js'),
  unpause: () => import('./commands/unpause.js'),
  stats: () => import('./commands/stats.js'),
  system: () => import('./commands/system.js'),
  serve: () => import('./commands/serve.js'),
  version: () => import('./commands/version.js'),
  info: () => import('./commands/info.js'),
};

const USAGE = `Usage:  nsbox COMMAND

A Linux container engine in Node.js (docker's commands, no daemon)

Commands:
  run       Create and run a new container from an image
  ps        List containers
  rm        Remove one or more containers
  inspect   Return low-level information on containers and images
  exec      Execute a command in a running container
  logs      Fetch the logs of a container
  start     Start one or more stopped containers
  stop      Stop one or more running containers
  restart   Restart one or more containers
  kill      Kill one or more running containers
  pause     Pause all processes within one or more containers
  unpause   Unpause all processes within one or more containers
  stats     Display a live stream of container resource usage statistics
  pull      Download an image from a registry
  images    List images
  rmi       Remove one or more images
  tag       Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  save      Save an image to a tar archive
  load      Load an image from a tar archive
  info      Display system-wide information
  system    prune: remove stopped containers and leftover cgroups
  serve     Serve the Docker Engine API (docker -H unix://…, dockerode)
  version   Show the nsbox version information
`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') return main(['version']);
  const load = commands[name];
  if (!load) {
    process.stderr.write(`nsbox: '${name}' is not a nsbox command.\nSee 'nsbox --help'\n`);
    return 125;
  }
  try {
    return await (await load()).default(rest);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`nsbox: ${e instanceof ValidationError ? `${message}\nSee 'nsbox ${name} --help'` : message}\n`);
    if (e instanceof NsboxError && e.syscall === 'execve') return e.code === 'ENOENT' ? 127 : 126;
    return 125;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
