/**
 * nsbox run [OPTIONS] IMAGE [COMMAND] [ARG...]: a container from an image in the foreground, its
 * exit code as ours. -i passes stdin, -t gives it a terminal (raw mode, resize), signals are
 * forwarded. Detached containers (-d) need nsbox-shim and the engine's records (coming next).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Container } from '../../runtime/container.js';
import type { ContainerOptions, Mount } from '../../runtime/options.js';
import { NsboxError, ValidationError } from '../../errors.js';
import '../../image/image.js'; // registers the image resolver
import { flag, parseArgs, value, values, type FlagSpec } from '../args.js';
import { ContainerStore, parseRestartPolicy, processStartTime } from '../../engine/index.js';

const SPECS: FlagSpec[] = [
  { names: ['interactive', 'i'], kind: 'bool' },
  { names: ['tty', 't'], kind: 'bool' },
  { names: ['detach', 'd'], kind: 'bool' },
  { names: ['rm'], kind: 'bool' },
  { names: ['name'], kind: 'value' },
  { names: ['env', 'e'], kind: 'list' },
  { names: ['env-file'], kind: 'list' },
  { names: ['volume', 'v'], kind: 'list' },
  { names: ['tmpfs'], kind: 'list' },
  { names: ['workdir', 'w'], kind: 'value' },
  { names: ['user', 'u'], kind: 'value' },
  { names: ['hostname', 'h'], kind: 'value' },
  { names: ['entrypoint'], kind: 'value' },
  { names: ['read-only'], kind: 'bool' },
  { names: ['memory', 'm'], kind: 'value' },
  { names: ['memory-swap'], kind: 'value' },
  { names: ['cpus'], kind: 'value' },
  { names: ['cpu-shares', 'c'], kind: 'value' },
  { names: ['pids-limit'], kind: 'value' },
  { names: ['cpuset-cpus'], kind: 'value' },
  { names: ['network', 'net'], kind: 'value' },
  { names: ['restart'], kind: 'value' },
  { names: ['cap-add'], kind: 'list' },
  { names: ['cap-drop'], kind: 'list' },
  { names: ['privileged'], kind: 'bool' },
  { names: ['pull'], kind: 'value' },
  { names: ['security-opt'], kind: 'list' },
];

function envFrom(p: ReturnType<typeof parseArgs>): string[] {
  const env: string[] = [];
  for (const file of values(p, 'env-file')) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const l = line.trim();
      if (!l || l.startsWith('#')) continue;
      env.push(l.includes('=') ? l : `${l}=${process.env[l] ?? ''}`);
    }
  }
  for (const e of values(p, 'env')) env.push(e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`);
  return env;
}

function mountsFrom(p: ReturnType<typeof parseArgs>): Mount[] {
  const mounts: Mount[] = [];
  for (const v of values(p, 'volume')) {
    const [source, target, mode] = v.split(':');
    if (!source || !target) throw new ValidationError(`invalid volume specification: '${v}' (nsbox binds host paths: -v /host/path:/container/path[:ro])`, 'volume');
    mounts.push({ type: 'bind', source: resolve(source), target, readonly: mode === 'ro', recursive: true });
  }
  for (const t of values(p, 'tmpfs')) {
    const [target, opts] = t.split(':');
    const size = opts?.split(',').find((o) => o.startsWith('size='))?.slice(5);
    mounts.push({ type: 'tmpfs', target: target!, readonly: false, ...(size ? { size } : {}) });
  }
  return mounts;
}

export function optionsFrom(p: ReturnType<typeof parseArgs>): ContainerOptions {
  const [image, ...command] = p.positional;
  if (!image) throw new ValidationError('"nsbox run" requires at least 1 argument.', 'image');
  const network = value(p, 'network') ?? 'none';
  if (network !== 'none' && network !== 'host') throw new ValidationError(`network ${network}: nsbox supports none (the default: own namespace, lo only) and host`, 'network');
  const resources: NonNullable<ContainerOptions['resources']> = {};
  const memory = value(p, 'memory');
  if (memory) resources.memory = memory;
  const swap = value(p, 'memory-swap');
  if (swap) resources.memorySwap = swap === '-1' ? -1 : swap;
  const cpus = value(p, 'cpus');
  if (cpus) resources.cpus = Number(cpus);
  const shares = value(p, 'cpu-shares');
  if (shares) resources.cpuShares = Number(shares);
  const pids = value(p, 'pids-limit');
  if (pids) resources.pids = Number(pids);
  const cpuset = value(p, 'cpuset-cpus');
  if (cpuset) resources.cpuset = { cpus: cpuset };
  const seccomp = values(p, 'security-opt').find((o) => o.startsWith('seccomp='))?.slice(8);
  const entrypoint = value(p, 'entrypoint');
  const user = value(p, 'user');
  const opts: ContainerOptions = {
    image,
    ...(command.length ? { command } : {}),
    ...(entrypoint !== undefined ? { entrypoint: entrypoint === '' ? [] : [entrypoint] } : {}),
    env: envFrom(p),
    mounts: mountsFrom(p),
    ...(value(p, 'workdir') ? { cwd: value(p, 'workdir')! } : {}),
    ...(user ? { user } : {}),
    ...(value(p, 'hostname') ? { hostname: value(p, 'hostname')! } : {}),
    ...(flag(p, 'read-only') ? { readonlyRootfs: true } : {}),
    namespaces: { net: network === 'none' },
    ...(Object.keys(resources).length ? { resources } : {}),
    ...(values(p, 'cap-add').length ? { capAdd: values(p, 'cap-add') } : {}),
    ...(values(p, 'cap-drop').length ? { capDrop: values(p, 'cap-drop') } : {}),
    ...(flag(p, 'privileged') ? { privileged: true } : {}),
    ...(seccomp === 'unconfined' ? { seccomp: 'unconfined' as const } : seccomp ? { seccomp: JSON.parse(readFileSync(seccomp, 'utf8')) as never } : {}),
    ...(value(p, 'pull') ? { pull: value(p, 'pull') as 'missing' | 'always' | 'never' } : {}),
  };
  return opts;
}

const signalCode = (sig: string | null) => {
  const n = sig ? ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 0 : 0;
  return 128 + n;
};

export default async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, SPECS);
  if (flag(p, 'detach')) return runDetached(p);
  const tty = flag(p, 'tty');
  const interactive = flag(p, 'interactive');
  const ttySize = tty ? { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 } : false;
  const options: ContainerOptions = {
    ...optionsFrom(p),
    tty: ttySize,
    stdio: tty ? 'pipe' : [interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'],
  };
  // The run is recorded, as docker does, so that `ps -a`, `inspect` and `rm` find it afterwards.
  const store = await ContainerStore.open();
  const { stdio: _stdio, tty: _tty, ...stored } = options;
  void _stdio;
  void _tty;
  const record = await store.create({ ...(value(p, 'name') ? { name: value(p, 'name')! } : {}), command: p.positional.slice(1), options: stored });
  const finish = async (status: { exitCode: number | null; signal: string | null; oomKilled?: boolean }, error?: string) => {
    await store.update(record.id, (r) => {
      r.state = 'exited';
      r.exitCode = status.exitCode;
      r.signal = status.signal;
      r.oomKilled = status.oomKilled ?? false;
      r.finishedAt = new Date().toISOString();
      if (error) r.error = error;
    });
    if (flag(p, 'rm')) await store.remove(record.id, { force: true });
  };
  let c: Container;
  try {
    c = await Container.run({ ...options, id: record.id });
  } catch (e) {
    const code = e instanceof NsboxError && e.syscall === 'execve' ? (e.code === 'ENOENT' ? 127 : 126) : 125;
    await finish({ exitCode: code, signal: null }, (e as Error).message).catch(() => {});
    throw e;
  }
  const pid = c.pid!;
  await store.update(record.id, async (r) => {
    r.state = 'running';
    r.startedAt = new Date().toISOString();
    r.command = c.config.command ?? [];
    if (c.image) r.image = { ref: c.image.ref, digest: c.image.digest };
    r.supervisor = { kind: 'process', pid, pidStartTime: (await processStartTime(pid)) ?? 0 };
  });
  const forward = (sig: NodeJS.Signals) => {
    try {
      c.kill(sig);
    } catch {
      // already gone
    }
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  if (!tty) for (const s of signals) process.on(s, forward);
  let restore = () => {};
  if (tty) {
    const stdin = process.stdin;
    if (interactive) {
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.pipe(c.stdin!);
      restore = () => {
        if (stdin.isTTY) stdin.setRawMode(false);
        stdin.unpipe(c.stdin!);
        stdin.pause();
      };
    }
    c.stdout!.pipe(process.stdout);
    const onResize = () => c.resize(process.stdout.columns, process.stdout.rows);
    process.stdout.on('resize', onResize);
    const prev = restore;
    restore = () => {
      prev();
      process.stdout.off('resize', onResize);
    };
  }
  let status: Awaited<ReturnType<Container['wait']>> | undefined;
  try {
    status = await c.wait();
    if (c.stdout) await new Promise((r) => (c.stdout!.readableEnded ? r(undefined) : c.stdout!.once('end', r)));
    return status.exitCode ?? signalCode(status.signal);
  } finally {
    restore();
    for (const s of signals) process.off(s, forward);
    await c.remove();
    await finish(status ?? { exitCode: null, signal: 'SIGKILL' });
  }
}

/** run -d: the container under nsbox-shim, recorded with it; prints the id and returns at once. */
async function runDetached(p: ReturnType<typeof parseArgs>): Promise<number> {
  if (flag(p, 'rm')) throw new ValidationError('--rm with -d is not supported yet: remove the container with nsbox rm once it has exited', 'rm');
  const restart = value(p, 'restart') ?? 'no';
  const store = await ContainerStore.open();
  const base = optionsFrom(p);
  const record = await store.create({
    ...(value(p, 'name') ? { name: value(p, 'name')! } : {}),
    command: p.positional.slice(1),
    options: base,
    restartPolicy: parseRestartPolicy(restart),
  });
  try {
    const c = await Container.create({ ...base, id: record.id, tty: flag(p, 'tty') ? { cols: 80, rows: 24 } : false, stdio: 'ignore' });
    const started = await c.startDetached({ restart: restart as never, openStdin: flag(p, 'interactive') });
    writeFileSync(join(started.bundle, 'cgroup.json'), JSON.stringify(started.cgroupPaths));
    const shimStart = await processStartTime(started.shimPid);
    await store.update(record.id, (r) => {
      r.state = 'running';
      r.startedAt = new Date().toISOString();
      r.command = c.config.command ?? [];
      if (c.image) r.image = { ref: c.image.ref, digest: c.image.digest };
      r.supervisor = { kind: 'shim', pid: started.shimPid, bundle: started.bundle, ...(shimStart !== undefined ? { pidStartTime: shimStart } : {}) };
    });
  } catch (e) {
    await store.remove(record.id, { force: true }).catch(() => {});
    throw e;
  }
  process.stdout.write(`${record.id}\n`);
  return 0;
}
