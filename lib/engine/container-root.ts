/**
 * A container's root as a `RootDir`, running or not, for copying files in and out.
 *
 * A running container's root is its init's (`/proc/PID/root`): the lookup goes through that
 * process's mount namespace, so its volumes and binds are seen as the container sees them. A
 * container that does not run has no mounted root (the overlay is mounted by the container's own
 * child, in its own namespace): a helper process is cloned into a new mount namespace, mounts the
 * overlay and the container's binds there as the start would, and waits; the root is reached through
 * the helper's `/proc/PID/root`. Nothing is mounted in this process's namespace, and the helper dies
 * with this process (PDEATHSIG) or when the root is closed, taking its mounts with it.
 */
import { closeSync, constants as fsc, existsSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { constants, native, type SetupOp } from '../native.js';
import { hostFacts } from '../runtime/host.js';
import { signalNumber } from '../runtime/signals.js';
import { O_PATH, RootDir } from './in-root.js';

const AT_FDCWD = -100;

/** What a root is made of when nothing runs in it. */
export interface StoppedRoot {
  /** The directory the container's root is mounted on (or is, for a rootfs or a copied root). */
  root: string;
  /** Overlay parts, when the root is an overlay of image layers (lower: topmost first). */
  overlay?: { lower: string[]; upper: string; work: string };
  /** The container's mounts (binds are bound, tmpfs ones are empty in a stopped container and left out). */
  mounts?: ReadonlyArray<{ type: 'bind' | 'tmpfs'; source?: string; target: string; recursive?: boolean }>;
}

/** The root of a running container, through its init's pid. */
export function rootOfPid(pid: number): RootDir {
  return new RootDir(native.openAt2(AT_FDCWD, `/proc/${pid}/root`, O_PATH | fsc.O_DIRECTORY, 0, 0));
}

const inRoot = (root: string, p: string) => join(root, p);

/** The root of a container that does not run: see the header. */
export async function rootOfStopped(s: StoppedRoot): Promise<RootDir> {
  const binds = (s.mounts ?? []).flatMap((m) => (m.type === 'bind' && m.source ? [{ source: m.source, target: m.target, recursive: m.recursive ?? true }] : []));
  const copied = !s.overlay || !existsSync(s.overlay.upper) || (existsSync(s.root) && readdirSync(s.root).length > 0);
  if (copied && binds.length === 0) return RootDir.ofDir(s.root);
  const ops: SetupOp[] = [{ op: 'mount', target: '/', flags: constants.MS_REC | constants.MS_PRIVATE }];
  if (!copied && s.overlay) {
    const { lower, upper, work } = s.overlay;
    const data = `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}${hostFacts().privileged ? '' : ',userxattr'}`;
    ops.push({ op: 'mount', source: 'overlay', target: s.root, fstype: 'overlay', data });
  } else {
    ops.push({ op: 'bind', source: s.root, target: s.root, recursive: true });
  }
  // A bind whose target is missing from the image is made by the start; here it is only left out.
  for (const m of binds) ops.push({ op: 'bind', source: m.source, target: inRoot(s.root, m.target), recursive: m.recursive, optional: true });
  const devnull = openSync('/dev/null', fsc.O_RDWR);
  let child: { pid: number; pidfd: number };
  try {
    child = await native.spawn({
      cloneFlags: constants.CLONE_NEWNS,
      ops,
      // The host's sleep: it only holds the namespace until the root is closed.
      argv: ['sleep', 'infinity'],
      env: [],
      path: '/usr/bin:/bin',
      stdio: [devnull, devnull, devnull],
    });
  } finally {
    closeSync(devnull);
  }
  const exited = new Promise<void>((resolve) => native.watchExit(child.pidfd, () => resolve()));
  const release = async () => {
    native.sendSignal(child.pidfd, signalNumber('SIGKILL'));
    await exited;
    closeSync(child.pidfd);
  };
  try {
    return new RootDir(native.openAt2(AT_FDCWD, `/proc/${child.pid}/root${s.root}`, O_PATH | fsc.O_DIRECTORY, 0, 0), release);
  } catch (e) {
    await release();
    throw e;
  }
}
