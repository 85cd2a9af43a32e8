/**
 * The quick `nsbox exec [-i] [-e NAME[=value]]... [-w DIR] [-u UID[:GID]] CONTAINER COMMAND [ARG...]`: bin/nsbox.js runs it from a bundle of its
 * own (tools/bundle-cli.mjs), without zod, the engine or the CLI's main bundle (issue 14: exec within
 * 25 ms of `node -e 0`). It reads the container without the engine (engine/container-list.ts), takes
 * the spawn plan its last start compiled (exec.json, runtime/exec-template.ts), fills in the command,
 * stdio and the container's pidfd and spawns it through the addon. What the full command does, it
 * does: stdin a pipe (fed with -i, else at its end at once), the output on our stdout and stderr
 * (given to it as they are, or through pipes relayed to them when they are a terminal), our
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT forwarded, the exit code its own (128 + a signal's number).
 *
 * Anything else (another flag, a container it cannot read or that is not running, no template, a
 * paused container, a spawn that fails: nothing ran) answers undefined before anything is printed
 * or started, and bin/nsbox.js runs the full command, which does it or says why not.
 */
import { closeSync, readFileSync } from 'node:fs';
import { readRunningContainer } from '../../engine/container-list.js';
import { native } from '../../native.js';
import { opsWithUser, planFromTemplate, readExecTemplate, type ExecTemplate, type TemplateOptions } from '../../runtime/exec-template.js';
import { flag, parseArgs, value, values } from '../args.js';
import { closeAll, outputFds, relay, takeSignals } from './fds.js';
import { EXEC_FLAGS } from '../exec-flags.js';

interface Prepared {
  template: ExecTemplate;
  command: string[];
  /** The container's init. */
  pid: number;
  interactive: boolean;
  /** -e, -w and -u. */
  options: TemplateOptions;
}

/** What the exec needs, or undefined when this is the full command's to do. */
async function prepare(argv: string[]): Promise<Prepared | undefined> {
  const p = parseArgs(argv, EXEC_FLAGS);
  if ([...p.flags.keys()].some((k) => k !== 'interactive' && k !== 'env' && k !== 'workdir' && k !== 'user')) return undefined;
  // As the full command takes them (NAME alone: ours); what its schema would refuse is its to say.
  const env = values(p, 'env').map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`));
  if (env.some((e) => !/^[^=\0]+=[^\0]*$/.test(e))) return undefined;
  const cwd = value(p, 'workdir') || undefined;
  if (cwd !== undefined && !/^\/[^\0]*$/.test(cwd)) return undefined;
  // uid[:gid], `root` as 0 (engine/exec.ts's userOf); a name is the full command's to look up or refuse.
  const user = value(p, 'user')?.replace(/^root(?=:|$)/, '0').replace(/:root$/, ':0') || undefined;
  if (user !== undefined && !/^\d+(:\d+)?$/.test(user)) return undefined;
  const [ref, ...command] = p.positional;
  if (!ref || command.length === 0 || command.some((a) => a.includes('\0'))) return undefined;
  const running = await readRunningContainer(ref);
  if (!running) return undefined;
  const template = readExecTemplate(running.bundle);
  if (!template || (user !== undefined && !opsWithUser(template.plan.ops, user))) return undefined;
  // A process placed in a frozen cgroup stops before its execve: the full command refuses it by name.
  if (template.freezeFile && !/^(THAWED|0)\s*$/.test(readFileSync(template.freezeFile, 'utf8'))) return undefined;
  return { template, command, pid: running.pid, interactive: flag(p, 'interactive'), options: { ...(env.length ? { env } : {}), ...(cwd !== undefined ? { cwd } : {}), ...(user !== undefined ? { user } : {}) } };
}

// Our reader went away: end quietly, as the full command does (main.ts, output.ts).
const quietExit = (): never => process.exit(process.exitCode ?? 0);

export async function run(argv: string[]): Promise<number | undefined> {
  let prepared: Prepared | undefined;
  let pidfd: number;
  try {
    prepared = await prepare(argv);
    if (!prepared) return undefined;
    // Its shim has not reaped it (the shim was alive when read): the pid still names the container's init.
    pidfd = native.pidfdOpen(prepared.pid);
  } catch {
    // Nothing started, nothing printed: the full command does it again and says what went wrong.
    return undefined;
  }
  const [inR, inW] = native.pipe();
  // Its stdout and stderr: ours, or pipes relayed to ours when they are a terminal (as the quick run's).
  const stdio: [number, number, number] = [inR, 1, 2];
  const given = [pidfd, inR];
  const outPipes = outputFds(stdio, given);
  // Our signals are the exec'd process's from its start on: one that comes before it is kept for it.
  const signals = takeSignals();
  let child: { pid: number; pidfd: number };
  try {
    // On this thread: nothing else is to be done until it runs, and without pipes to relay nothing
    // else of this process needs the thread pool, whose threads' start would be this wait's largest part.
    child = native.spawnSync(planFromTemplate(prepared.template, prepared.command, pidfd, stdio, prepared.options));
  } catch {
    // The spawn failed before the command ran (execve included): the full command explains it.
    closeAll([inW, ...outPipes.map(([r]) => r)]);
    return signals.giveUp();
  } finally {
    closeAll(given);
  }
  signals.to(child.pidfd);
  if (prepared.interactive) void relay(0, inW, inW, quietExit);
  else closeSync(inW);
  const exited = new Promise<number>((resolve) =>
    native.watchExit(child.pidfd, (info) => {
      signals.exited();
      closeAll([child.pidfd]);
      resolve(info.exitCode ?? (info.signal ? 128 + info.signal : 125));
    }),
  );
  const [code] = await Promise.all([exited, ...outPipes.map(([r, to]) => relay(r, to, r, quietExit))]);
  // With -i our stdin may still be read by a thread that no input will end: exit, as the full command does.
  process.exit(code);
}

