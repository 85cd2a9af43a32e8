/**
 * The only module that loads the addon. It declares the addon's shape once and registers
 * `NsboxError` as the class native code throws.
 */
import { existsSync } from 'node:fs';
import { NsboxError } from './errors.js';
import { packagePath } from './package-root.js';
import type { CgroupDirEntry, CgroupRemoval } from './cgroup/native-ops.js';

/** One setup step the child runs after clone, in order (see cpp/setup-ops.cc). */
export type SetupOp =
  /** `fallbackData`: the mount's data without an option the kernel may refuse (EINVAL), tried then. */
  | { op: 'mount'; source?: string; target: string; fstype?: string; flags?: number; data?: string; fallbackData?: string; optional?: boolean }
  | { op: 'bind'; source: string; target: string; recursive?: boolean; set?: number; clear?: number; optional?: boolean }
  | { op: 'setattr'; target: string; set?: number; clear?: number; recursive?: boolean; optional?: boolean }
  /**
   * An idmapped bind (runtime-spec mount uidMappings/gidMappings): the spawning process makes a
   * detached copy of source (recursive: rbind), idmaps it with a user namespace of these maps
   * (uid_map format; idmapRecursive: every mount of the tree), sets set/clear, and the child attaches it.
   */
  | { op: 'idmap_bind'; source: string; target: string; uidMap: string; gidMap: string; recursive?: boolean; idmapRecursive?: boolean; set?: number; clear?: number }
  | { op: 'umount'; target: string; flags?: number; optional?: boolean }
  | { op: 'mkdir'; target: string; mode: number; optional?: boolean }
  | { op: 'touch'; target: string; mode: number; optional?: boolean }
  | { op: 'mknod'; target: string; mode: number; major: number; minor: number; optional?: boolean }
  | { op: 'symlink'; value: string; target: string; optional?: boolean }
  | { op: 'pivot_root'; target: string }
  | { op: 'chroot'; target: string }
  | { op: 'sethostname'; value: string }
  | { op: 'chdir'; target: string }
  | { op: 'write'; target: string; data: string; optional?: boolean }
  | { op: 'setids'; uid: number; gid: number; groups?: number[] }
  | { op: 'chmod'; target: string; mode: number; optional?: boolean }
  | { op: 'lo_up' }
  | { op: 'unshare'; flags: number }
  | { op: 'mask'; target: string }
  | { op: 'readonly'; target: string }
  | { op: 'setns'; fd: number; flags: number }
  /** Drop from the bounding set every capability not in the mask `caps` (bit n = capability n). */
  | { op: 'capbset'; caps: number }
  | { op: 'capset'; effective: number; permitted: number; inheritable: number }
  | { op: 'ambient'; caps: number }
  | { op: 'prctl'; option: number; arg: number }
  /**
   * A classic BPF program (struct sock_filter[]), installed with seccomp(2)'s `flags`
   * (SECCOMP_FILTER_FLAG_*). With NEW_LISTENER the plan needs `seccompListener`: the child hands
   * the listener fd to the spawning thread, which passes it on to that socket before the spawn
   * returns.
   */
  | { op: 'seccomp'; filter: Buffer; flags?: number }
  /** setrlimit of the child's own limit (resource as RLIMIT_*); -1 is unlimited. */
  | { op: 'rlimit'; resource: number; soft: number; hard: number }
  | { op: 'umask'; mode: number }
  /** personality(2): the execution domain (PER_LINUX32 …) with its flags. */
  | { op: 'personality'; arg: number }
  /**
   * The OCI create/start split: the spawn returns here (the child set up, not exec'd), and the child
   * blocks until another process reads the fifo behind `fd`, an O_PATH fd of the spawning process.
   * The child then has memory of its own (no CLONE_VM).
   */
  | { op: 'await_start'; fd: number };

/** An opaque native layer extractor (layerExtractOpen). */
export interface LayerExtractor {
  readonly __nsboxLayerExtractor: never;
}

/** An opaque native gunzip stream (gunzipOpen). */
export interface GunzipStream {
  readonly __nsboxGunzipStream: never;
}

export interface SpawnPlan {
  /** CLONE_NEW* flags for clone3 (ignored when entering). */
  cloneFlags: number;
  ops: SetupOp[];
  argv: string[];
  env: string[];
  /** PATH searched inside the container when argv[0] has no slash (the addon has no default of its own). */
  path: string;
  /** fds dup'ed onto 0, 1, 2 in the child; -1 leaves the inherited one. */
  stdio: [number, number, number];
  setsid?: boolean;
  /** Make fd 0 (a pty slave) the controlling terminal. */
  ctty?: boolean;
  /** Kill the child when the thread that spawned it dies (default true). */
  pdeathsig?: boolean;
  /** The caller's fds 3 .. 3+preserveFds-1 stay open in the process (runc's --preserve-fds). */
  preserveFds?: number;
  uidMap?: string;
  gidMap?: string;
  denySetgroups?: boolean;
  /** Run these setuid helpers (newuidmap / newgidmap PID triples...) instead of writing the maps. */
  uidMapper?: string;
  gidMapper?: string;
  /** cgroup2 directory: the child is born in it (CLONE_INTO_CGROUP). */
  cgroupPath?: string;
  /**
   * cgroup v1 `tasks` files the process joins itself, writing "0" into them (cpp/plan.h): a new
   * container's once released, an exec's first child before it forks, so that pids.max counts the
   * fork. Moving itself, a single-threaded process skips the kernel's lock that waits for an RCU
   * grace period on every move of a whole process (cgroup.procs).
   */
  cgroupTasks?: string[];
  /**
   * A network namespace (a path such as /run/nsbox/netns/ID) the child is born in: the spawning
   * thread joins it for the clone and goes back. cloneFlags must then not have CLONE_NEWNET.
   */
  netns?: string;
  /**
   * A pid namespace (a path such as /proc/PID/ns/pid) the child is born in, as its pid 1's sibling:
   * the spawning thread joins it for its children for the clone and goes back. cloneFlags must
   * then not have CLONE_NEWPID.
   */
  pidns?: string;
  /**
   * Run once the id maps are written ("{pid}": the child's pid), before the child is released; it
   * writes to its fd 3 when ready (it fails by closing it). Its pid goes to netHelperPidFile.
   */
  netHelper?: string[];
  netHelperPidFile?: string;
  /**
   * A seccomp agent's unix socket (runtime-spec `listenerPath`): the listener fd of the plan's
   * NEW_LISTENER seccomp op is sent to it by SCM_RIGHTS with `seccompState` as the message, every
   * U+0001 in it replaced by the child's pid, once the child has installed its filter and before
   * the spawn returns. The spawn fails if that fails.
   */
  seccompListener?: string;
  seccompState?: string;
  /** Enter mode: join the namespaces (enterFlags) of the process behind this pidfd first. */
  enterPidfd?: number;
  enterFlags?: number;
}

/**
 * One rtnetlink request (cpp/netlink.cc), run in the network namespace at `ns` (a path; absent: the
 * process's own). Names are interface names (at most 15 bytes); `mac` is 'aa:bb:cc:dd:ee:ff'.
 */
export type NetlinkOp =
  | { op: 'link_add'; kind: 'bridge'; name: string; mtu?: number; mac?: string; ns?: string }
  /** A veth pair: `name` here, `peer` created directly in the namespace at `peerNs`. */
  | { op: 'link_add'; kind: 'veth'; name: string; peer: string; peerNs?: string; mtu?: number; mac?: string; ns?: string }
  | { op: 'link_set'; name: string; up?: boolean; master?: string; rename?: string; moveTo?: string; mtu?: number; mac?: string; ns?: string }
  /** A missing link is fine with `optional`. */
  | { op: 'link_del'; name: string; optional?: boolean; ns?: string }
  | { op: 'addr_add'; name: string; address: string; prefix: number; ns?: string }
  /** A default route via `address` (the gateway). */
  | { op: 'route_add'; address: string; ns?: string };

export interface ExitInfo {
  exitCode?: number;
  signal?: number;
  coreDumped?: boolean;
  error?: string;
  /** With `reap: false`: the process has exited (its status is its parent's to take). */
  exited?: boolean;
}

export interface NativeAddon {
  setErrorClass(ctor: typeof NsboxError): void;
  constants: Record<
    | 'CLONE_NEWUSER' | 'CLONE_NEWPID' | 'CLONE_NEWNS' | 'CLONE_NEWNET' | 'CLONE_NEWIPC' | 'CLONE_NEWUTS'
    | 'CLONE_NEWCGROUP' | 'CLONE_NEWTIME' | 'MS_RDONLY' | 'MS_NOSUID' | 'MS_NODEV' | 'MS_NOEXEC'
    | 'MS_REMOUNT' | 'MS_BIND' | 'MS_REC' | 'MS_PRIVATE' | 'MS_SLAVE' | 'MS_SHARED' | 'MS_STRICTATIME'
    | 'MS_RELATIME' | 'MNT_DETACH' | 'MOUNT_ATTR_RDONLY' | 'MOUNT_ATTR_NOSUID' | 'MOUNT_ATTR_NODEV'
    | 'MOUNT_ATTR_NOEXEC' | 'LOCK_SH' | 'LOCK_EX' | 'LOCK_NB' | 'LOCK_UN',
    number
  >;
  /** clone3 + setup ops + execve on the thread pool; resolves once execve succeeded. */
  spawn(plan: SpawnPlan): Promise<{ pid: number; pidfd: number }>;
  /**
   * spawn on the calling thread, which waits for the execve (every signal held back meanwhile): for
   * a process with nothing else to do, as the thread pool's start costs more than the wait.
   */
  spawnSync(plan: SpawnPlan): { pid: number; pidfd: number };
  /**
   * Reaps the child behind pidfd when it exits and calls back once. `unref`: the watch does not
   * keep the event loop alive (for a child that may outlive this process). `reap: false`: only
   * tells of the exit (`{ exited: true }`), of any process, child or not, and reaps nothing.
   */
  watchExit(pidfd: number, callback: (info: ExitInfo) => void, options?: { unref?: boolean; reap?: boolean }): void;
  /**
   * Stops a watchExit that has not called back yet (its callback is dropped); false when none is
   * active on that pidfd. The pidfd is left open. On a pidfd of a process that is not this
   * process's child, watchExit calls back with `{ error: 'ECHILD' }` when that process exits.
   */
  unwatchExit(pidfd: number): boolean;
  /**
   * Calls back after each close of the file at `path` by any process (inotify's IN_CLOSE), until
   * unwatchClose(handle). The watch keeps the event loop alive.
   */
  watchClose(path: string, callback: () => void): number;
  /** Stops a watchClose; false when it is not active. */
  unwatchClose(handle: number): boolean;
  /** pidfd_send_signal; false when the process is already gone. */
  sendSignal(pidfd: number, signo: number): boolean;
  pidfdOpen(pid: number): number;
  /**
   * posix_spawn (no fork of this process) of `file` with `argv` and `envp`, on the thread pool:
   * stdin a pipe that gets `input` then EOF (/dev/null without it), stdout and stderr into pipes
   * whose read ends (CLOEXEC) are returned, signals at their defaults. The child is ours:
   * watchExit(pidfd) reaps it. A failed execve rejects (syscall 'posix_spawn'). `keepFds` become
   * the child's fds 3, 4, ... (copied at the call: the caller may close its own after it). `setsid`:
   * the child starts in a session of its own. `stdinPipe` (without `input`): stdin is a pipe whose
   * write end (CLOEXEC) is returned as `stdin`, the caller's to write and close.
   */
  spawnProcess(file: string, argv: string[], envp: string[], input?: Buffer, keepFds?: number[], options?: { setsid?: boolean; stdinPipe?: boolean }): Promise<{ pid: number; pidfd: number; stdin?: number; stdout: number; stderr: number }>;
  /** pipe2(O_CLOEXEC) -> [read end, write end]. */
  pipe(): [number, number];
  openPty(size?: { cols: number; rows: number }): { master: number; slave: number; path: string };
  /** Connects to the unix stream socket at `socketPath` and sends `fd` (SCM_RIGHTS) with the text `name`. */
  sendFd(socketPath: string, fd: number, name: string): void;
  /**
   * Loads the cgroup-v2 device program of `rules` (the compact form of lib/cgroup/devices.ts) and
   * attaches it to the cgroup directory `dir` with BPF_F_ALLOW_MULTI, replacing the device programs
   * attached there before.
   */
  setDeviceProgram(dir: string, rules: Buffer): void;
  /**
   * A container's cgroup made as lib/cgroup/native-ops.ts compiled it (cpp/cgroup-dirs.cc): every
   * entry's directory, its v1 cpuset filled, v2 controllers enabled above it. The leaves must be
   * new; on a failure the levels made are removed again and an NsboxError is thrown.
   */
  cgroupMake(entries: CgroupDirEntry[], controllers: string[]): void;
  /** Kills what is left in the cgroup (freezer loop, cgroup.kill), then removes its directories and the nsbox-made parents left empty. */
  cgroupRemove(removal: CgroupRemoval): void;
  resizePty(fd: number, cols: number, rows: number): void;
  pivotRoot(newRoot: string, putOld: string): void;
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data?: string): void;
  umount(target: string, flags?: number): void;
  /** mknod(2); mode includes the type bits (S_IFCHR 0o020000, S_IFBLK 0o060000, S_IFIFO 0o010000). */
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** null when the attribute is absent. */
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  /** flock(2); false when LOCK_NB would block. Without LOCK_NB it blocks the calling thread. */
  flock(fd: number, op: number): boolean;
  /**
   * openat2(2) of `path` under the directory `dirfd` with `resolve` (RESOLVE_* bits, see
   * lib/engine/in-root.ts); O_CLOEXEC is added. `mode` counts with O_CREAT only. EAGAIN (a rename
   * raced the lookup) is retried here.
   */
  openAt2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  /** renameat2(a, b, RENAME_EXCHANGE): the two names swapped in one step; both must exist. */
  renameExchange(a: string, b: string): void;
  /**
   * Creates and fills regular files under the directory `dirfd`, in one thread-pool hop for them all:
   * for each, openat(dirfd, path, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600), its chunks
   * written, fchown (when uid or gid is ≥ 0), fchmod, futimens, close. `paths` are the relative paths
   * joined by NUL; `meta` holds 6 numbers a file: mode, uid, gid, atime, mtime (seconds), how many of
   * `chunks` (in order) are its content. Stops at the first failure and rejects with its syscall and
   * path; the files before it are complete.
   */
  writeFiles(dirfd: number, paths: string, meta: Float64Array, chunks: Buffer[]): Promise<void>;
  /** A gzip stream inflated on the thread pool (cpp/layer-gunzip.cc): an opaque handle for gunzipRun. */
  gunzipOpen(): GunzipStream;
  /**
   * Feeds `input` (the next compressed bytes) and inflates, on the thread pool, until the input is used
   * up or `maxOut` bytes came out; `more` then says to call again (with no input) before the end.
   * With `final` (no input follows) and nothing more to give, `digest` is the sha256 of all the
   * output. One call at a time per stream; a corrupt or truncated stream rejects (code Z_DATA_ERROR).
   */
  gunzipRun(stream: GunzipStream, input: Buffer[], final: boolean, maxOut: number): Promise<{ chunks: Buffer[]; more: boolean; digest?: string }>;
  /** 'isa-l' (libisal-dev was there at build time) or 'zlib'. */
  gunzipBackend: 'isa-l' | 'zlib';
  /**
   * A layer unpack into the empty directory `root` done by the addon (cpp/layer-extract.cc): gzip (or
   * plain tar) in, files out, with the rules of lib/storage/layer-writer.ts. `ownUid`/`ownGid` are the
   * owner a new file gets anyway (-1: always chown when `owners`); `overlayPrefix` names the opaque
   * xattr's namespace ('trusted' or 'user').
   */
  layerExtractOpen(root: string, gzip: boolean, owners: boolean, ownUid: number, ownGid: number, overlayPrefix: string): LayerExtractor;
  /**
   * The next bytes of the blob, inflated, hashed, parsed and applied on the thread pool; with `final`,
   * the end: directory metadata, and the diff id, tar size, entry count and content size. Rejects with
   * an Error carrying the message (without the "layer …: " prefix), `code`, `entry` and `errno` when
   * known; `warnings` are messages of the same form. One call at a time.
   */
  layerExtractRun(
    x: LayerExtractor,
    input: Buffer[],
    final: boolean,
  ): Promise<{ warnings: string[]; diffId?: string; tarSize?: number; entries?: number; contentSize?: number }>;
  /** Closes the extractor's fds (after a failure or an abandoned unpack); not while a run is in flight. */
  layerExtractClose(x: LayerExtractor): void;
  /** The requests in order, in one thread-pool hop; rejects at the first failure (syscall 'netlink', the request named). */
  netlink(ops: NetlinkOp[]): Promise<void>;
  /** The links of the process's own network namespace (if_nameindex). */
  linkNames(): string[];
  /** A new network namespace with lo up, kept by a bind mount on `path` (a new file), as `ip netns add`. */
  netnsCreate(path: string): Promise<void>;
  /** Unmounts and unlinks a namespace file; false when there was none. */
  netnsDelete(path: string): boolean;
  /**
   * A socket bound to `ip`:`port` ('' = every IPv4 address; port 0 = one the kernel picks), not
   * listening: it holds the port. Returns [fd (CLOEXEC), the bound port]. EADDRINUSE when taken.
   * `reuse`: SO_REUSEADDR, for a socket the holder will listen on (a proxy).
   */
  bindPort(protocol: 'tcp' | 'udp' | 'sctp', ip: string, port: number, reuse?: boolean): [number, number];
  /**
   * Runs nftables commands (nft's syntax) through libnftables in the process's network namespace;
   * resolves with the output (JSON with `json`). Rejects with the parser's/kernel's message.
   */
  nft(commands: string, json?: boolean): Promise<string>;
}

function load(): NativeAddon {
  const candidates = [packagePath('build', 'Release', 'nsbox.node'), packagePath('build', 'Debug', 'nsbox.node')];
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    throw new NsboxError(`nsbox: the native addon is not built (looked for ${candidates[0]}); run npm install`, {
      code: 'ERR_ADDON_MISSING',
    });
  }
  // process.dlopen rather than require: the addon is loaded once (below) and needs neither the
  // module resolution nor the realpath and cache of require, which took 1.5-2.5 ms of a quick command.
  const m = { exports: {} as NativeAddon };
  process.dlopen(m, file);
  const addon = m.exports;
  addon.setErrorClass(NsboxError);
  return addon;
}

let loaded: NativeAddon | undefined;
const addon = (): NativeAddon => (loaded ??= load());

/**
 * The addon, loaded at its first use rather than at import: nsbox-runc's V8 startup snapshot
 * (tools/bundle-runc.mjs) holds every module evaluated, and a snapshot cannot hold an addon.
 */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_t, key) => Reflect.get(addon(), key),
  has: (_t, key) => Reflect.has(addon(), key),
  // A test wraps one of the addon's functions here (every use reads it through this proxy).
  set: (_t, key, value) => Reflect.set(addon(), key, value),
});
export const constants: NativeAddon['constants'] = new Proxy({} as NativeAddon['constants'], {
  get: (_t, key) => Reflect.get(addon().constants, key),
  has: (_t, key) => Reflect.has(addon().constants, key),
});
