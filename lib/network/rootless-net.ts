/**
 * Rootless networking: a container of an unprivileged user (in a user namespace of its own, which
 * owns its network namespace) gets outbound networking and published ports through `pasta`
 * (Debian's passt). The spawner runs pasta once the container's namespaces and id maps exist and
 * releases the container only when pasta says it is ready (the plan's `netHelper`,
 * cpp/spawn-core.cc RunNetHelper): the container never sees an unconfigured network. pasta is the
 * spawner's child and dies with it (PR_SET_PDEATHSIG: the SDK process, or the shim of a detached
 * container); `stopRootlessHelper` ends it when the container goes.
 *
 * Why pasta and not slirp4netns: measured in bench/network (rootless lines) and docs/design-notes.md:
 * pasta forwards published ports itself (slirp4netns needs its API socket, or podman's
 * rootlessport proxy), is ready in one exec, and moves more data through a published port.
 *
 * The container's side looks like slirp4netns's (podman's rootless default): address
 * 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3 forwarded to the host's resolver. The host's own
 * addresses are reached as themselves (pasta sends the traffic from host sockets); the host's
 * loopback is not reachable through the gateway (--no-map-gw, as podman's --disable-host-loopback).
 */
import { accessSync, closeSync, constants, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { NsboxError, ValidationError, isCode } from '../errors.js';
import { native } from '../native.js';
import type { Mount } from '../runtime/options.js';
import { exitOfPidfd, pidfdOf } from '../runtime/process-exit.js';
import { writeNetworkFiles } from './files.js';
import type { BoundPort, ExtraHost, PortBinding } from './schemas.js';

export const ROOTLESS_ADDRESS = '10.0.2.100';
export const ROOTLESS_PREFIX = 24;
export const ROOTLESS_GATEWAY = '10.0.2.2';
export const ROOTLESS_DNS = '10.0.2.3';
const TUN = '/dev/net/tun';

/** The pasta binary: $NSBOX_PASTA, else the first `pasta` on PATH (then /usr/bin, /usr/sbin). */
export function findPasta(env: NodeJS.ProcessEnv = process.env, fallback: readonly string[] = ['/usr/bin', '/usr/sbin']): string {
  const where = env.NSBOX_PASTA ? [env.NSBOX_PASTA] : [...(env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...fallback].map((d) => path.join(d, 'pasta'));
  const found = where.find((p) => existsSync(p));
  if (found) return found;
  const looked = env.NSBOX_PASTA ? `$NSBOX_PASTA ${env.NSBOX_PASTA}` : `PATH, ${fallback.join(', ')}`;
  throw new NsboxError(`rootless networking needs pasta (Debian package passt), which is not installed (looked in ${looked}): install it, or use network 'none' or 'host'`, {
    code: 'ENOENT',
    path: 'pasta',
  });
}

/** pasta opens /dev/net/tun inside the container's namespaces: it must be open to this user (udev's mode 0666). */
export function checkTun(): void {
  try {
    accessSync(TUN, constants.R_OK | constants.W_OK);
  } catch (err) {
    if (!isCode(err, 'EACCES', 'ENOENT', 'EPERM')) throw err;
    throw new NsboxError(`rootless networking needs ${TUN} readable and writable by uid ${process.getuid?.() ?? '?'} (mode 0666, as udev sets it): ${(err as NodeJS.ErrnoException).code}`, {
      code: (err as NodeJS.ErrnoException).code ?? 'EACCES',
      path: TUN,
      cause: err,
    });
  }
}

/**
 * Whether a rootless container can have networking when it asks for none in particular: pasta is
 * installed and /dev/net/tun is open to this user. (Else it keeps `none`; an explicit -p says why.)
 */
export function rootlessNetworkAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    findPasta(env);
    checkTun();
    return true;
  } catch (err) {
    // ENOENT (no pasta, no tun), EACCES/EPERM (a tun device not open to this user)
    if (isCode(err, 'ENOENT', 'EACCES', 'EPERM')) return false;
    throw err;
  }
}

/**
 * Host ports for bindings that ask for a random one (0): a free port the kernel picks, released at
 * once for pasta to bind (pasta binds what it is told; it cannot report a port it picked).
 */
export function pickHostPorts(bindings: readonly PortBinding[]): BoundPort[] {
  return bindings.map((b) => {
    if (b.protocol === 'sctp') throw new ValidationError('rootless networking (pasta) publishes tcp and udp ports, not sctp', 'ports');
    if (b.hostPort !== 0) return b;
    const [fd, port] = native.bindPort(b.protocol, b.hostIp, 0);
    closeSync(fd);
    return { ...b, hostPort: port };
  });
}

const anyAddress = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';

/** pasta's port spec: `[ADDR/]HOSTPORT:CONTAINERPORT`. */
const portSpec = (p: BoundPort) => `${anyAddress(p.hostIp) ? '' : `${p.hostIp}/`}${p.hostPort}:${p.containerPort}`;

/**
 * pasta's command line for the container `{pid}`: in the foreground (so PR_SET_PDEATHSIG holds),
 * quiet, its pid written to fd 3 once initialised (the readiness signal), logging to `log`; only
 * the published ports forwarded in (pasta's default would forward every port bound inside), none
 * out.
 */
export function pastaArgv(pasta: string, ports: readonly BoundPort[], log: string): string[] {
  const argv = [pasta, '--config-net', '--foreground', '--quiet', '--pid', '/proc/self/fd/3', '--log-file', log, '--ns-ifname', 'eth0'];
  argv.push('--address', ROOTLESS_ADDRESS, '--netmask', String(ROOTLESS_PREFIX), '--gateway', ROOTLESS_GATEWAY, '--no-map-gw', '--dns-forward', ROOTLESS_DNS);
  for (const proto of ['tcp', 'udp'] as const) {
    const flag = proto === 'tcp' ? '-t' : '-u';
    const mine = ports.filter((p) => p.protocol === proto);
    if (!mine.length) argv.push(flag, 'none');
    for (const p of mine) argv.push(flag, portSpec(p));
  }
  argv.push('-T', 'none', '-U', 'none', '{pid}');
  return argv;
}

export interface RootlessNetworkRequest {
  /** The container's network directory: /etc files, pasta's pid file and log. */
  dir: string;
  hostname: string;
  ports: readonly PortBinding[];
  extraHosts?: readonly ExtraHost[];
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOptions?: readonly string[];
}

export interface RootlessNetwork {
  /** The runtime's `netHelper` option. */
  netHelper: { argv: [string, ...string[]]; pidFile: string };
  ports: BoundPort[];
  mounts: Mount[];
  ipAddress: string;
  gateway: string;
  prefixLength: number;
}

/** Everything before the start: the tool found, host ports chosen, /etc files written, pasta's command line. */
export function prepareRootlessNetwork(r: RootlessNetworkRequest): RootlessNetwork {
  const pasta = findPasta();
  checkTun();
  const ports = pickHostPorts(r.ports);
  const mounts = writeNetworkFiles({
    dir: r.dir,
    hostname: r.hostname,
    ipAddress: ROOTLESS_ADDRESS,
    extraHosts: r.extraHosts ?? [],
    ...(r.dns?.length ? {} : { nameserver: ROOTLESS_DNS }),
    dns: r.dns ?? [],
    dnsSearch: r.dnsSearch ?? [],
    dnsOptions: r.dnsOptions ?? [],
  });
  const [file, ...rest] = pastaArgv(pasta, ports, path.join(r.dir, 'pasta.log'));
  return {
    netHelper: { argv: [file!, ...rest], pidFile: helperPidFile(r.dir) },
    ports,
    mounts,
    ipAddress: ROOTLESS_ADDRESS,
    gateway: ROOTLESS_GATEWAY,
    prefixLength: ROOTLESS_PREFIX,
  };
}

export const helperPidFile = (dir: string): string => path.join(dir, 'pasta.pid');

/** Why pasta failed, from its log (it logs there, not to a terminal), for the start's error. */
export function helperLog(dir: string): string {
  try {
    return readFileSync(path.join(dir, 'pasta.log'), 'utf8').trim().split('\n').slice(-5).join('; ');
  } catch (err) {
    // ENOENT: it never got as far as opening its log
    if (isCode(err, 'ENOENT')) return '';
    throw err;
  }
}

/** The pid of the container's pasta when it still runs as pasta (a reused pid is left alone). */
export function helperPid(dir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(helperPidFile(dir), 'utf8').trim());
  } catch (err) {
    // ENOENT: no helper was started (or it was stopped already)
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    // pasta re-executes itself as passt.avx2 where the CPU has AVX2
    return /^(pasta|passt)/.test(path.basename(argv0)) ? pid : undefined;
  } catch (err) {
    // ENOENT/ESRCH: it is gone
    if (isCode(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
}

/**
 * Ends the container's pasta (SIGTERM), waits for its exit (and reaps it when it is this
 * process's child), and removes its pid file. Idempotent.
 */
export async function stopRootlessHelper(dir: string): Promise<void> {
  const pid = helperPid(dir);
  const pidfd = pid === undefined ? undefined : pidfdOf(pid);
  if (pidfd !== undefined) {
    const exited = exitOfPidfd(pidfd);
    native.sendSignal(pidfd, 15);
    await exited;
  }
  rmSync(helperPidFile(dir), { force: true });
}
