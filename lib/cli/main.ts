/**
 * The `nsbox` command: docker's commands over the library. Each command lives in its own module,
 * loaded only when used, so that start-up stays lean. Exit codes as docker's: 125 for nsbox's own
 * errors, 126/127 when the command cannot be run, else the container's.
 */
import { failureExitCode } from '../engine/container-status.js';
import { ValidationError } from '../errors.js';
import { describeFlags, HelpRequested, type FlagSpec } from './args.js';
import * as z from 'zod';

// One-shot validation: zod's JIT (a generated parser per object schema) costs more than it saves
// in a process that parses each schema once or twice.
z.config({ jitless: true });

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<{ default: Command }>> = {
  pull: () => import('./commands/pull.js'),
  push: () => import('./commands/push.js'),
  login: () => import('./commands/login.js'),
  logout: () => import('./commands/logout.js'),
  commit: () => import('./commands/commit.js'),
  diff: () => import('./commands/diff.js'),
  history: () => import('./commands/history.js'),
  images: () => import('./commands/images.js'),
  rmi: () => import('./commands/rmi.js'),
  image: () => import('./commands/image.js'),
  rollback: () => import('./commands/rollback.js'),
  tag: () => import('./commands/tag.js'),
  save: () => import('./commands/save.js'),
  load: () => import('./commands/load.js'),
  import: () => import('./commands/import.js'),
  build: () => import('./commands/build.js'),
  builder: () => import('./commands/builder.js'),
  volume: () => import('./commands/volume.js'),
  network: () => import('./commands/network.js'),
  run: () => import('./commands/run.js'),
  create: () => import('./commands/create.js'),
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
  port: () => import('./commands/port.js'),
  cp: () => import('./commands/cp.js'),
  unpause: () => import('./commands/unpause.js'),
  stats: () => import('./commands/stats.js'),
  system: () => import('./commands/system.js'),
  serve: () => import('./commands/serve.js'),
  version: () => import('./commands/version.js'),
  info: () => import('./commands/info.js'),
};

/** Each command's arguments and what it does, for `nsbox --help` and `nsbox CMD --help`. */
const about: Record<string, [args: string, summary: string]> = {
  run: ['[OPTIONS] IMAGE [COMMAND] [ARG...]', 'Create and run a new container from an image'],
  create: ['[OPTIONS] IMAGE [COMMAND] [ARG...]', 'Create a new container'],
  ps: ['[OPTIONS]', 'List containers'],
  rm: ['[OPTIONS] CONTAINER [CONTAINER...]', 'Remove one or more containers'],
  inspect: ['[OPTIONS] NAME|ID [NAME|ID...]', 'Return low-level information on containers and images'],
  exec: ['[OPTIONS] CONTAINER COMMAND [ARG...]', 'Execute a command in a running container'],
  logs: ['[OPTIONS] CONTAINER', 'Fetch the logs of a container'],
  cp: ['[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-  or  SRC_PATH|- CONTAINER:DEST_PATH', 'Copy files/folders between a container and the local filesystem'],
  start: ['[OPTIONS] CONTAINER [CONTAINER...]', 'Start one or more stopped containers'],
  stop: ['[OPTIONS] CONTAINER [CONTAINER...]', 'Stop one or more running containers'],
  restart: ['[OPTIONS] CONTAINER [CONTAINER...]', 'Restart one or more containers'],
  kill: ['[OPTIONS] CONTAINER [CONTAINER...]', 'Kill one or more running containers'],
  pause: ['CONTAINER [CONTAINER...]', 'Pause all processes within one or more containers'],
  port: ['CONTAINER [PRIVATE_PORT[/PROTO]]', 'List port mappings or a specific mapping for the container'],
  unpause: ['CONTAINER [CONTAINER...]', 'Unpause all processes within one or more containers'],
  stats: ['[OPTIONS] [CONTAINER...]', 'Display a live stream of container resource usage statistics'],
  pull: ['[OPTIONS] NAME[:TAG|@DIGEST]', 'Download an image from a registry'],
  push: ['[OPTIONS] NAME[:TAG]', 'Upload an image to a registry'],
  login: ['[OPTIONS] [SERVER]', 'Log in to a registry'],
  logout: ['[SERVER]', 'Log out from a registry'],
  commit: ['[OPTIONS] CONTAINER [REPOSITORY[:TAG]]', "Create a new image from a container's changes"],
  diff: ['CONTAINER', "Inspect changes to files or directories on a container's filesystem"],
  history: ['[OPTIONS] IMAGE', 'Show the history of an image'],
  images: ['[OPTIONS] [REPOSITORY[:TAG]]', 'List images'],
  rmi: ['[OPTIONS] IMAGE [IMAGE...]', 'Remove one or more images (--forget: also versions kept for rollback)'],
  image: ['ls|rm|prune|inspect [--provenance]|log|history|tag|push|pull|rollback ...', 'Manage images; log: a tag\'s journal; inspect --provenance: who built it and how'],
  rollback: ['[--to DIGEST | -N] [--push] NAME[:TAG]', 'Move a tag back to an image it pointed to before (nsbox image log)'],
  tag: ['SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE'],
  save: ['[OPTIONS] IMAGE [IMAGE...]', 'Save an image to a tar archive'],
  load: ['[OPTIONS]', 'Load an image from a tar archive'],
  import: ['[OPTIONS] file|URL|- [REPOSITORY[:TAG]]', 'Import the contents from a tarball to create a filesystem image'],
  build: ['[OPTIONS] PATH|-', 'Build an image from a Dockerfile'],
  builder: ['prune [OPTIONS]', 'Manage builds: prune removes the build cache'],
  volume: ['create|ls|inspect|rm|prune [OPTIONS] [NAME...]', 'Manage volumes'],
  network: ['create|ls|inspect|rm|prune|connect|disconnect [OPTIONS] [NETWORK...]', 'Manage networks'],
  info: ['', 'Display system-wide information'],
  system: ['prune|df [OPTIONS]', 'prune: remove unused data (with the build cache); df: show disk usage'],
  serve: ['[OPTIONS]', 'Serve the Docker Engine API (docker -H unix://…, dockerode)'],
  version: ['', 'Show the nsbox version information'],
};

const USAGE = `Usage:  nsbox COMMAND

A Linux container engine in Node.js (docker's commands, no daemon)

Commands:
${Object.entries(about)
  .map(([n, [, summary]]) => `  ${n.padEnd(10)}${summary}`)
  .join('\n')}
`;

function commandUsage(name: string, specs: FlagSpec[]): string {
  const [args, summary] = about[name] ?? ['', ''];
  const options = specs.length ? `\nOptions:\n${describeFlags(specs).map((l) => `  ${l}`).join('\n')}\n` : '';
  return `\nUsage:  nsbox ${name}${args ? ` ${args}` : ''}\n\n${summary}\n${options}`;
}

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
  if ((name === 'info' || name === 'version') && rest.includes('--help')) {
    process.stdout.write(commandUsage(name, []));
    return 0;
  }
  try {
    return await (await load()).default(rest);
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(commandUsage(name, e.specs));
      return 0;
    }
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`nsbox: ${e instanceof ValidationError ? `${message}\nSee 'nsbox ${name} --help'` : message}\n`);
    return failureExitCode(e);
  }
}

/**
 * Calls `fn` with process.stdout once something uses it: Node makes the stream on first use, which
 * costs a command several milliseconds, and a command that prints with output.ts's writeOut (or
 * nothing) never needs it.
 */
function whenStdoutMade(fn: (stdout: NodeJS.WriteStream) => void): void {
  const made = Object.getOwnPropertyDescriptor(process, 'stdout');
  if (!made?.get || !made.configurable) {
    fn(process.stdout);
    return;
  }
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: made.enumerable ?? true,
    get() {
      // Node's own getter again (it keeps the stream it made), then the caller's set-up, once.
      Object.defineProperty(process, 'stdout', made);
      const stdout = made.get!.call(process) as NodeJS.WriteStream;
      fn(stdout);
      return stdout;
    },
  });
}

/**
 * Runs the command line of this process (`process.argv`) and sets its exit code: bin/nsbox.js
 * calls it, from the CLI's bundle or from dist/.
 */
export async function runCli(): Promise<void> {
  // `nsbox images | head -1`: a reader that goes away ends the command quietly, as docker's.
  whenStdoutMade((stdout) =>
    stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    }),
  );
  // Once nothing is left to do (the event loop is empty), exit at once: Node's own exit frees the
  // heap page by page, ~10 ms for a command that loaded the engine, which the kernel does anyway.
  process.once('beforeExit', () => process.exit());
  process.exitCode = await main(process.argv.slice(2));
}

/** Loads these commands' modules: the bundle's build runs it so that its code cache covers them. */
export async function loadCommands(names: string[]): Promise<void> {
  await Promise.all(names.map((n) => commands[n]?.()));
}
