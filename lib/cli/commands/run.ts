/**
 * nsbox run [OPTIONS] IMAGE [COMMAND] [ARG...]: create + start + attach, as docker's. The
 * container runs under nsbox-shim; in the foreground this CLI is attached to it until it exits (its
 * exit code is ours; -i passes stdin, -t gives it a terminal, signals are forwarded), with -d it
 * prints the id and returns at once. A foreground `--rm` run without -t (nor -i from a terminal)
 * is this CLI's own child instead (lib/engine/foreground.ts): no shim to start, removed the moment
 * it exits.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isatty } from 'node:tty';
import { resolve } from 'node:path';
import { parseVolumeSpec, type VolumeRequest } from '../../engine/volumes.js';
import type { ContainerOptions, Mount } from '../../runtime/options.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { NETWORK_FLAGS, networkFrom } from '../network-flags.js';
import { HEALTH_FLAGS, healthcheckFrom } from '../health-flags.js';
import { flag, parseArgs, value, values, type FlagSpec, type Parsed } from '../args.js';
import { runSession } from '../terminal-session.js';
import { foregroundSession, shimSession } from '../sessions.js';
import { openEngine } from '../open-engine.js';
import type { ContainerRecord } from '../../engine/records.js';
import { defaultRoot } from '../../storage/layout.js';
import { quickRunKey, quickRunRequest } from '../quick/run-request.js';

export const SPECS: FlagSpec[] = [
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
  { names: ['restart'], kind: 'value' },
  { names: ['cap-add'], kind: 'list' },
  { names: ['cap-drop'], kind: 'list' },
  { names: ['privileged'], kind: 'bool' },
  { names: ['pull'], kind: 'value' },
  { names: ['security-opt'], kind: 'list' },
  ...NETWORK_FLAGS,
  ...HEALTH_FLAGS,
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
    const spec = parseVolumeSpec(v);
    if (spec.kind !== 'bind') continue;
    const source = spec.source === '~' || spec.source.startsWith('~/') ? homedir() + spec.source.slice(1) : resolve(spec.source);
    mounts.push({ type: 'bind', source, target: spec.target, readonly: spec.readonly, recursive: true });
  }
  for (const t of values(p, 'tmpfs')) {
    const [target, opts] = t.split(':');
    const size = opts?.split(',').find((o) => o.startsWith('size='))?.slice(5);
    mounts.push({ type: 'tmpfs', target: target!, readonly: false, ...(size ? { size } : {}) });
  }
  return mounts;
}

/** `-v NAME:/path` and `-v /path`: the engine makes (or finds) the volumes. */
function volumesFrom(p: ReturnType<typeof parseArgs>): VolumeRequest[] {
  return values(p, 'volume')
    .map(parseVolumeSpec)
    .flatMap((v) => (v.kind === 'volume' ? [{ ...(v.name ? { name: v.name } : {}), target: v.target, readonly: v.readonly, ...(v.noCopy ? { noCopy: true } : {}) }] : []));
}

export function optionsFrom(p: ReturnType<typeof parseArgs>, verb = 'run'): ContainerOptions {
  const [image, ...command] = p.positional;
  if (!image) throw new ValidationError(`"nsbox ${verb}" requires at least 1 argument.`, 'image');
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
  const healthcheck = healthcheckFrom(p);
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
    ...(Object.keys(resources).length ? { resources } : {}),
    ...(values(p, 'cap-add').length ? { capAdd: values(p, 'cap-add') } : {}),
    ...(values(p, 'cap-drop').length ? { capDrop: values(p, 'cap-drop') } : {}),
    ...(flag(p, 'privileged') ? { privileged: true } : {}),
    ...(seccomp === 'unconfined' ? { seccomp: 'unconfined' as const } : seccomp ? { seccomp: JSON.parse(readFileSync(seccomp, 'utf8')) as never } : {}),
    ...(value(p, 'pull') ? { pull: value(p, 'pull') as 'missing' | 'always' | 'never' } : {}),
    ...(healthcheck ? { healthcheck } : {}),
  };
  return opts;
}

/** The container `run` and `create` make from their flags (docker's create, shared by both). */
export async function createFrom(engine: Awaited<ReturnType<typeof openEngine>>, p: Parsed, attached: boolean, verb = 'run'): Promise<ContainerRecord> {
  const tty = flag(p, 'tty');
  const size = tty && attached && process.stdout.isTTY ? { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 } : { cols: 80, rows: 24 };
  const options: ContainerOptions = { ...optionsFrom(p, verb), tty: tty ? size : false };
  const { network, warnings } = networkFrom(p);
  for (const w of warnings) process.stderr.write(`WARNING: ${w}\n`);
  return engine.create({
    ...(value(p, 'name') ? { name: value(p, 'name')! } : {}),
    options,
    volumes: volumesFrom(p),
    // As docker's -v: a host directory that is not there yet is made (by the engine).
    makeBindSources: options.mounts?.flatMap((m) => (m.type === 'bind' ? [m.source] : [])) ?? [],
    openStdin: flag(p, 'interactive'),
    restart: value(p, 'restart') ?? 'no',
    autoRemove: flag(p, 'rm'),
    network,
  });
}

export default async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, SPECS);
  const detach = flag(p, 'detach');
  const tty = flag(p, 'tty');
  const interactive = flag(p, 'interactive');
  const autoRemove = flag(p, 'rm');
  const engine = await openEngine();
  const record = await createFrom(engine, p, !detach);
  // A foreground --rm run with nothing to attach but its stdio: this CLI supervises the container
  // itself (foreground.ts), without a shim; its output goes straight to ours unless ours is a
  // terminal (without -t, docker's container never has one).
  // -i from a pipe or a file: the container reads our stdin itself (from a terminal, docker's -i
  // without -t passes what is typed through a pipe: the shim's attach does that).
  if (!detach && autoRemove && !tty && !(interactive && isatty(0))) {
    const out = (fd: number) => (isatty(fd) ? 'pipe' : 'inherit');
    // A request the quick run takes (lib/cli/quick/run.ts): this start is kept for it.
    const quick = quickRunRequest(argv);
    const planKey = quick ? quickRunKey(quick, defaultRoot()) : undefined;
    const fg = await engine.startInForeground(record.id, { stdio: [interactive ? 'inherit' : 'ignore', out(1), out(2)], ...(planKey ? { planKey } : {}) });
    if (fg) {
      const code = await runSession(foregroundSession(fg), { tty: false, interactive: false });
      await fg.remove();
      return code;
    }
  }
  // In the foreground this CLI removes a --rm container the moment it exits (its shim's exit
  // command does, should this CLI be gone); detached, the exit command does. A failed start
  // removes it (the engine does that).
  await engine.start(record.id, { awaitAttach: !detach, claimRemoval: !detach });
  if (detach) {
    process.stdout.write(`${record.id}\n`);
    return 0;
  }
  const conn = await engine.attach(record.id);
  const code = await runSession(shimSession(engine, record.id, conn), { tty, interactive });
  // The engine's own watch may have removed it already (or be at it: this waits for that).
  if (autoRemove) {
    await engine.remove(record.id, { force: true, volumes: true }).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
  }
  return code;
}
