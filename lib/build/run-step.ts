/**
 * RUN: a container like any other (its own namespaces, cgroup, docker's seccomp profile and
 * capabilities) on an overlay of the parent's layers; its writable layer is the step's diff. The
 * container's run directory is the builder's own (runRoot), so the upper directory is known; it is
 * read after the process exited and before the container is removed. Output goes to `onOutput`
 * as it comes.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Container } from '../runtime/container.js';
import type { Mount } from '../runtime/options.js';
import { LayeredRoot } from './layered-root.js';
import { removeMountPoints } from './run-mounts.js';
import { NsboxError, isCode } from '../errors.js';
import { netNamespaceFor, type NetworkMode } from '../network/index.js';
import { resolveUser } from '../runtime/image-config.js';
import { signalNumber } from '../runtime/signals.js';

export interface RunStep {
  /** The parent's layer directories, topmost first (an empty list for scratch). */
  layers: string[];
  argv: string[];
  env: string[];
  cwd: string;
  user: string | undefined;
  network: NetworkMode;
  /** RUN --mount's runtime mounts; their mount points are kept out of the diff. */
  mounts?: Mount[];
  /** For docker's message: `The command '…' returned a non-zero code: N`. */
  display: string;
  onStart?: (id: string) => void;
  onOutput?: (chunk: Buffer) => void;
  /** Kills the process when aborted (another stage failed); the step then fails with the signal's reason. */
  signal?: AbortSignal;
}

export class RunFailedError extends NsboxError {
  readonly exitCode: number;
  constructor(display: string, exitCode: number) {
    super(`The command '${display}' returned a non-zero code: ${exitCode}`, { code: 'ERR_BUILD_RUN' });
    this.name = 'RunFailedError';
    this.exitCode = exitCode;
  }
}

let overlayChecked = false;
/**
 * The upper directory is a faithful diff only without redirect_dir and metacopy (a renamed
 * directory or a chmod would be an xattr pointing into a lower layer). The runtime's overlay takes
 * the kernel's defaults: a kernel that turns either on is refused rather than given wrong layers.
 */
function checkOverlayDefaults(): void {
  if (overlayChecked) return;
  for (const p of ['redirect_dir', 'metacopy']) {
    let v = 'N';
    try {
      v = readFileSync(`/sys/module/overlay/parameters/${p}`, 'utf8').trim();
    } catch (err) {
      // ENOENT: no such parameter (an old kernel, or overlay built in without it), so off
      if (!isCode(err, 'ENOENT')) throw err;
    }
    if (v === 'Y') throw new NsboxError(`the overlay module has ${p}=Y: RUN layers would not be faithful diffs; load overlay with ${p}=N to build`, { code: 'ENOTSUP' });
  }
  overlayChecked = true;
}

/** Runs the step; `collect(upper)` reads the diff before the container goes. */
export async function runStep<T>(step: RunStep, runRoot: string, collect: (upper: string) => Promise<T>): Promise<T> {
  checkOverlayDefaults();
  mkdirSync(runRoot, { recursive: true, mode: 0o700 });
  // A scratch parent still needs a lower directory for the overlay: an empty one.
  const empty = step.layers.length === 0 ? mkdtempSync(path.join(runRoot, 'empty-')) : undefined;
  const layers = empty ? [empty] : step.layers;
  const id = randomBytes(32).toString('hex');
  let c: Container | undefined;
  const kill = () => c?.kill('SIGKILL');
  try {
    step.signal?.throwIfAborted();
    c = await Container.create({
      id,
      layers,
      runRoot,
      command: step.argv,
      env: step.env,
      cwd: step.cwd || '/',
      ...(step.user ? { user: resolveUser(step.user, layers) } : {}),
      namespaces: netNamespaceFor(step.network),
      mounts: step.mounts ?? [],
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    step.signal?.throwIfAborted();
    await c.start();
    step.signal?.addEventListener('abort', kill, { once: true });
    if (step.signal?.aborted) kill();
    step.onStart?.(id);
    const pump = (s: NodeJS.ReadableStream | null) =>
      new Promise<void>((resolve) => {
        if (!s) return resolve();
        s.on('data', (d: Buffer) => step.onOutput?.(d));
        s.on('end', resolve);
        s.on('close', resolve);
        s.on('error', () => resolve());
      });
    const [status] = await Promise.all([c.wait(), pump(c.stdout), pump(c.stderr)]);
    step.signal?.throwIfAborted();
    // a signal's end is reported as a shell reports it: 128 + its number
    if (status.exitCode !== 0) throw new RunFailedError(step.display, status.exitCode ?? 128 + signalNumber(status.signal ?? 'SIGKILL'));
    const upper = path.join(runRoot, id, 'upper');
    if (step.mounts?.length) removeMountPoints(upper, new LayeredRoot(step.layers), step.mounts.map((m) => m.target));
    return await collect(upper);
  } finally {
    step.signal?.removeEventListener('abort', kill);
    await c?.remove();
    if (empty) rmSync(empty, { recursive: true, force: true });
  }
}
