/**
 * nsbox-runc: the OCI runtime command line (runc's, as containerd's shim drives it through
 * go-runc). Errors go to stderr and, with --log, to the log as runc writes them (`--log-format
 * json`: {"level":"error","msg":…,"time":…}); every failure exits 1.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidStateError, ValidationError } from '../errors.js';
import { bool, flag, list, parseFlags, b, r, v, type Parsed } from './args.js';
import { createContainer } from './create.js';
import { OCI_VERSION, defaultSpec, features } from './defaults.js';
import { execContainer } from './exec.js';
import { listContainers, psContainer, stateJson, statsEvent, updateContainer } from './info.js';
import { deleteContainer, killContainer, pauseContainer, startContainer } from './lifecycle.js';
import { parseSignal } from './process-ops.js';
import { runContainer } from './run.js';
import { DEFAULT_ROOT } from './state.js';

const GLOBAL = [v('root'), v('log'), v('log-format'), b('systemd-cgroup'), b('debug'), b('version', 'v'), v('criu'), v('rootless'), b('help', 'h')];
const COMMANDS: Record<string, ReturnType<typeof v>[]> = {
  create: [v('bundle', 'b'), v('pid-file'), v('console-socket'), b('no-pivot'), b('no-new-keyring'), v('preserve-fds'), v('pidfd-socket')],
  run: [v('bundle', 'b'), v('pid-file'), v('console-socket'), b('no-pivot'), b('no-new-keyring'), v('preserve-fds'), b('detach', 'd'), b('keep')],
  start: [],
  state: [],
  kill: [b('all', 'a')],
  delete: [b('force', 'f')],
  exec: [v('process', 'p'), b('detach', 'd'), v('pid-file'), v('console-socket'), b('tty', 't'), v('cwd'), r('env', 'e'), v('user', 'u'), r('additional-gids', 'g'), r('cap', 'c'), b('no-new-privs'), v('preserve-fds'), v('process-label'), v('apparmor'), v('cgroup')],
  ps: [v('format', 'f')],
  list: [v('format', 'f'), b('quiet', 'q')],
  pause: [],
  resume: [],
  update: [v('resources', 'r'), v('memory'), v('memory-swap'), v('memory-reservation'), v('kernel-memory'), v('cpu-quota'), v('cpu-period'), v('cpu-share'), v('cpu-rt-period'), v('cpu-rt-runtime'), v('cpuset-cpus'), v('cpuset-mems'), v('pids-limit'), v('blkio-weight'), v('l3-cache-schema'), v('mem-bw-schema')],
  events: [b('stats'), v('interval')],
  features: [],
  spec: [v('bundle', 'b'), b('rootless')],
};

class Log {
  constructor(readonly file: string | undefined, readonly json: boolean) {}
  error(msg: string): void {
    const time = new Date().toISOString();
    if (this.file) {
      const line = this.json ? JSON.stringify({ level: 'error', msg, time }) : `time="${time}" level=error msg=${JSON.stringify(msg)}`;
      appendFileSync(this.file, `${line}\n`);
    }
    process.stderr.write(`${msg}\n`);
  }
}

function needId(p: Parsed, cmd: string): string {
  const id = p.rest[0];
  if (!id) throw new ValidationError(`"${cmd}" requires a container id`, 'id');
  return id;
}

async function dispatch(cmd: string, p: Parsed, root: string): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  switch (cmd) {
    case 'create':
    case 'run': {
      const o = { root, id: needId(p, cmd), bundle: resolve(flag(p, 'bundle') ?? '.') };
      const pidFile = flag(p, 'pid-file');
      const consoleSocket = flag(p, 'console-socket');
      const preserve = flag(p, 'preserve-fds');
      const preserveFds = preserve === undefined ? 0 : Number(preserve);
      if (!Number.isInteger(preserveFds) || preserveFds < 0) throw new ValidationError(`invalid value "${preserve}" for flag -preserve-fds`, 'preserve-fds');
      const full = { ...o, ...(pidFile ? { pidFile: resolve(pidFile) } : {}), ...(consoleSocket ? { consoleSocket } : {}), ...(preserveFds ? { preserveFds } : {}) };
      if (cmd === 'run') return runContainer(full, bool(p, 'detach'));
      await createContainer(full);
      return 0;
    }
    case 'start':
      await startContainer(root, needId(p, cmd));
      return 0;
    case 'state':
      out(await stateJson(root, needId(p, cmd)));
      return 0;
    case 'kill':
      await killContainer(root, needId(p, cmd), parseSignal(p.rest[1] ?? 'SIGTERM'), bool(p, 'all'));
      return 0;
    case 'delete':
      await deleteContainer(root, needId(p, cmd), bool(p, 'force'));
      return 0;
    case 'exec': {
      const pidFile = flag(p, 'pid-file'), consoleSocket = flag(p, 'console-socket'), processFile = flag(p, 'process'), cwd = flag(p, 'cwd'), user = flag(p, 'user');
      return execContainer({
        root, id: needId(p, cmd), args: p.rest.slice(1), env: list(p, 'env'), caps: list(p, 'cap'), noNewPrivs: bool(p, 'no-new-privs'), tty: bool(p, 'tty'), detach: bool(p, 'detach'),
        ...(pidFile ? { pidFile: resolve(pidFile) } : {}), ...(consoleSocket ? { consoleSocket } : {}), ...(processFile ? { processFile } : {}), ...(cwd ? { cwd } : {}), ...(user ? { user } : {}),
      });
    }
    case 'ps':
      out(await psContainer(root, needId(p, cmd), flag(p, 'format') === 'json' ? 'json' : 'table', p.rest.slice(1)));
      return 0;
    case 'list':
      out(await listContainers(root, flag(p, 'format') === 'json' ? 'json' : 'table', bool(p, 'quiet')));
      return 0;
    case 'pause':
    case 'resume':
      await pauseContainer(root, needId(p, cmd), cmd === 'pause');
      return 0;
    case 'update': {
      const f = (n: string) => flag(p, n);
      const flags = { resources: f('resources'), memory: f('memory'), memorySwap: f('memory-swap'), cpuQuota: f('cpu-quota'), cpuPeriod: f('cpu-period'), cpuShares: f('cpu-share'), pidsLimit: f('pids-limit'), cpusetCpus: f('cpuset-cpus'), cpusetMems: f('cpuset-mems'), blkioWeight: f('blkio-weight') };
      await updateContainer(root, needId(p, cmd), Object.fromEntries(Object.entries(flags).filter(([, x]) => x !== undefined)));
      return 0;
    }
    case 'events':
      if (!bool(p, 'stats')) throw new ValidationError('events: only --stats is supported by nsbox-runc', 'stats');
      out(await statsEvent(root, needId(p, cmd)));
      return 0;
    case 'features':
      out(JSON.stringify(features(), null, '    '));
      return 0;
    case 'spec': {
      const file = resolve(flag(p, 'bundle') ?? '.', 'config.json');
      if (existsSync(file)) throw new InvalidStateError(`File ${file} exists. Remove it first`);
      writeFileSync(file, `${JSON.stringify(defaultSpec(), null, '\t')}\n`);
      return 0;
    }
    default:
      throw new ValidationError(`No help topic for '${cmd}'`, 'command');
  }
}

export async function runCli(argv: string[] = process.argv.slice(2)): Promise<number> {
  let log = new Log(undefined, false);
  try {
    const g = parseFlags(argv, GLOBAL);
    log = new Log(flag(g, 'log'), flag(g, 'log-format') === 'json');
    if (bool(g, 'version')) {
      process.stdout.write(`nsbox-runc version 0.1.0\nspec: ${OCI_VERSION}\n`);
      return 0;
    }
    if (bool(g, 'systemd-cgroup')) throw new ValidationError('--systemd-cgroup is not supported by nsbox-runc: it manages cgroupfs only (set SystemdCgroup = false)', 'systemd-cgroup');
    const [cmd, ...rest] = g.rest;
    if (!cmd) throw new ValidationError('usage: nsbox-runc [global options] command [command options] [arguments...]', 'command');
    const specs = COMMANDS[cmd];
    if (!specs) throw new ValidationError(`No help topic for '${cmd}'`, 'command');
    const p = parseFlags(rest, specs, cmd === 'exec' || cmd === 'kill' || cmd === 'ps');
    return await dispatch(cmd, p, flag(g, 'root') ?? DEFAULT_ROOT);
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
}
