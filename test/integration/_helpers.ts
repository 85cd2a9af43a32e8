/** Shared fixtures for integration tests: the busybox rootfs, root checks, output collection. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import test, { type Implementation, type SkipFn } from 'ava';

const script = fileURLToPath(new URL('../fixtures/make-rootfs.sh', import.meta.url));
let rootfsPath: string | undefined;

/** The busybox rootfs (built by test/fixtures/make-rootfs.sh on first use). */
export function rootfs(): string {
  rootfsPath ??= execFileSync('bash', [script], { encoding: 'utf8' }).trim().split('\n').pop()!;
  return rootfsPath;
}

export const isRoot = process.geteuid?.() === 0;

/** Reads a stream to its end as text. */
export function collect(stream: Readable | null): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

/** The fds this process has open, by number (minus the one readdir itself uses). */
export function openFds(): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return !readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').includes('inotify');
    } catch {
      return false;
    }
  });
}

/** Children of this process, including zombies. */
export function children(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

export const mountTable = () => readFileSync('/proc/self/mountinfo', 'utf8');

/** What registers a test: `test`, `test.serial`, or either with a typed context. */
export interface Register<C = unknown> {
  (title: string, implementation: Implementation<[], C>): void;
  skip: SkipFn<C>;
}

/**
 * `register` itself when `reason` is undefined; otherwise a register that skips each test with the
 * reason at the end of its title ("… — skipped: missing skopeo"), so every skip says why on its
 * own line, in every reporter.
 */
export function skipIf<C>(reason: string | undefined, register: Register<C>): Register<C> {
  if (reason === undefined) return register;
  const skipped = (title: string, implementation: Implementation<[], C>) => register.skip(`${title} — skipped: ${reason}`, implementation);
  return Object.assign(skipped, { skip: skipped as SkipFn<C> });
}

const notRoot = isRoot ? undefined : 'needs root';
/** `test` as root; skipped, saying so, otherwise (CI runs as root). */
export const rootTest = skipIf(notRoot, test);
/** The same, one at a time: for tests that count this process's fds, children or mounts. */
export const serialRootTest = skipIf(notRoot, test.serial);

/**
 * Whether an unprivileged user can reach this checkout and its node_modules (a clone under /root,
 * say, is out of its reach): the rootless tests run the library as that user.
 */
export function unprivilegedCanRead(uid = 65534): boolean {
  const here = fileURLToPath(new URL('../../', import.meta.url));
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'test', '-r', `${here}node_modules/tsx/package.json`]);
  return r.status === 0;
}

/**
 * Runs a driver script (through tsx) in a network and mount namespace of its own (`unshare -n
 * --mount`, lo up), with the busybox rootfs and a fresh temp dir (removed after) as its arguments;
 * resolves with the JSON object of its last output line, rejects with its `error` or its stderr.
 */
export function runDriver(script: string, timeoutMs: number): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const tmp = mkdtempSync(path.join(tmpdir(), `nsbox-${path.basename(script, '.ts')}-`));
    const child = spawn('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', script, rootfs(), tmp], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      rmSync(tmp, { recursive: true, force: true });
      const line = stdout.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) return reject(new Error(`${path.basename(script)} printed no result (status ${status}, signal ${signal}): ${stderr.slice(-4000)}`));
      const o = JSON.parse(line) as Record<string, any>;
      if (o.error) return reject(new Error(`${o.error}\n${stderr.slice(-4000)}`));
      resolve(o);
    });
  });
}
