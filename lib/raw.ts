/**
 * Raw kernel operations for advanced users. Each one acts on the CALLING process: in a Node
 * program that is the whole Node process (all its threads share the mount table, root and most
 * namespaces). Most callers want `Container`; these exist for tools that build their own sandboxes,
 * typically in a child process.
 */
import { native } from './native.js';

/** The addon's kernel constants (CLONE_NEW*, MS_*, MNT_DETACH, MOUNT_ATTR_*). */
export const constants = native.constants;

/**
 * pivot_root(2): makes `newRoot` the root mount of the calling process's mount namespace and moves
 * the old root to `putOld`. Changes the root of every process in that namespace whose root was the
 * old one: never call it in a Node process that shares the host's mount namespace.
 */
export function pivotRoot(newRoot: string, putOld: string): void {
  native.pivotRoot(newRoot, putOld);
}

/**
 * setns(2): moves the calling thread into the namespace behind `fd` (from /proc/PID/ns/* or a pidfd).
 * Node is multi-threaded: joining a user namespace fails with EINVAL, a mount namespace needs an
 * unshared fs context, and the others change only the calling (main) thread, not libuv's threads.
 */
export function setns(fd: number, nstype = 0): void {
  native.setns(fd, nstype);
}

/**
 * unshare(2): gives the calling thread new namespaces (flags: constants.CLONE_NEW*). In Node that is
 * the main thread only: libuv's threads keep the old ones. A user namespace fails with EINVAL
 * (multi-threaded process); a pid namespace applies only to children created later.
 */
export function unshare(flags: number): void {
  native.unshare(flags);
}

/** mount(2) in the calling process's mount namespace: visible to everything sharing it (the host, unless unshared). */
export function mount(source: string | null, target: string, fstype: string | null, flags = 0, data?: string): void {
  native.mount(source, target, fstype, flags, data);
}

/** umount2(2) in the calling process's mount namespace (flags: constants.MNT_DETACH for a lazy unmount). */
export function umount(target: string, flags = 0): void {
  native.umount(target, flags);
}
