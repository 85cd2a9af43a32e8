/**
 * nsbox serve [--socket PATH] [--host unix://PATH|tcp://127.0.0.1:PORT]... [--group G] [--debug]:
 * the Docker Engine API, so that the docker CLI, dockerode and other Docker clients drive nsbox.
 * The daemon is one more client of the engine: containers live under their shims and outlive it.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ApiServer, parseListenAddress, type ListenAddress } from '../../api/server.js';
import { Engine } from '../../engine/engine.js';
import { sweepBuildRunDirs } from '../../build/build-run-dir.js';
import { defaultRunRoot } from '../../runtime/run-root.js';
import { StoreLayout } from '../../storage/layout.js';
import { packagePath } from '../../package-root.js';
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value, values } from '../args.js';

/** root's socket; without root, the user's own under its run root (podman's $XDG_RUNTIME_DIR/podman/podman.sock). */
const defaultSocket = (): string => (process.geteuid?.() === 0 ? '/run/nsbox/nsbox.sock' : join(defaultRunRoot(), 'nsbox.sock'));

/** A group name or number → gid (from /etc/group, as docker's --group reads it). */
function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === group);
  const gid = line ? Number(line.split(':')[2]) : NaN;
  if (!Number.isInteger(gid)) throw new ValidationError(`group ${group} not found in /etc/group`, 'group');
  return gid;
}

export default async function serve(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['socket'], kind: 'value' },
    { names: ['host', 'H'], kind: 'list' },
    { names: ['group', 'G'], kind: 'value' },
    { names: ['debug', 'D'], kind: 'bool' },
  ], { stopAtPositional: false });
  if (p.positional.length) throw new ValidationError(`"nsbox serve" accepts no arguments (got ${p.positional.join(' ')})`, 'args');
  const group = value(p, 'group');
  const gid = group === undefined ? undefined : groupId(group);
  let addresses: ListenAddress[];
  try {
    addresses = values(p, 'host').map(parseListenAddress);
  } catch (e) {
    throw new ValidationError((e as Error).message, 'host');
  }
  const socket = value(p, 'socket');
  if (socket !== undefined || addresses.length === 0) addresses.unshift({ kind: 'unix', path: socket ?? defaultSocket() });
  addresses = addresses.map((a) => (a.kind === 'unix' ? { ...a, mode: 0o660, ...(gid !== undefined ? { gid } : {}) } : a));

  const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string };
  const log = (e: Record<string, unknown>) => process.stderr.write(JSON.stringify(e) + '\n');
  const engine = await Engine.open({ owned: false });
  // As the store repairs itself: networking a crash or an unwatched exit left behind.
  await engine.repairNetworking().catch((e: unknown) => log({ time: new Date().toISOString(), level: 'error', msg: 'network repair failed', error: (e as Error).message }));
  // What builds killed mid-RUN left: their run directories, cgroups and temp files.
  await sweepBuildRunDirs(join(defaultRunRoot(), 'build'), new StoreLayout(engine.root).tmpDir).catch((e: unknown) => log({ time: new Date().toISOString(), level: 'error', msg: 'build sweep failed', error: (e as Error).message }));
  // As dockerd at start-up: containers with --restart always / unless-stopped whose shim is gone.
  const restored = await engine.restoreRestartPolicies();
  for (const id of restored.started) log({ time: new Date().toISOString(), level: 'info', msg: 'restarted by its restart policy', container: id });
  for (const f of restored.failed) log({ time: new Date().toISOString(), level: 'error', msg: 'restart by its restart policy failed', container: f.id, error: f.error });
  const server = new ApiServer(engine, { version: pkg.version, debug: flag(p, 'debug'), log });
  for (const a of addresses) {
    if (a.kind === 'unix') mkdirSync(dirname(a.path), { recursive: true, mode: 0o755 });
    await server.listen(a);
  }
  const shown = addresses.map((a) => (a.kind === 'unix' ? `unix://${a.path}` : `tcp://${a.host}:${a.port}`));
  log({ time: new Date().toISOString(), level: 'info', msg: 'listening', addresses: shown, root: engine.root });

  // A handler that throws past its own catch must not take the daemon (and every client) down.
  const onUnexpected = (err: unknown) => log({ time: new Date().toISOString(), level: 'error', msg: 'unexpected error', error: String((err as Error)?.stack ?? err) });
  process.on('uncaughtException', onUnexpected);
  process.on('unhandledRejection', onUnexpected);

  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals) => {
      log({ time: new Date().toISOString(), level: 'info', msg: `${sig}: shutting down; containers keep running under their shims` });
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await server.close();
  return 0;
}
