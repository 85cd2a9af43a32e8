/**
 * Why a container's root cannot see a host path it needs: in a user namespace the container's root
 * is another host uid (say 100000), and a directory on the way (a home or checkout of mode 0700)
 * may not let that uid search it. The bind then fails with EACCES; this names the directory.
 */
import { statSync } from 'node:fs';
import { posix as path } from 'node:path';
import { NsboxError, isCode } from '../errors.js';
import type { ContainerConfig, IdMapEntry } from './options.js';

interface Who {
  uid: number;
  gid: number;
  groups: number[];
  uidMap: IdMapEntry[];
  gidMap: IdMapEntry[];
}

const hostOf = (map: IdMapEntry[], id: number) => {
  const e = map.find((m) => id >= m.containerID && id < m.containerID + m.size);
  return e === undefined ? undefined : e.hostID + id - e.containerID;
};
const mapped = (map: IdMapEntry[], hostId: number) => map.some((m) => hostId >= m.hostID && hostId < m.hostID + m.size);

/** Whether `who` may search directory `dir`, as the kernel decides it for a process root in its own user namespace. */
function maySearch(dir: string, who: Who): boolean {
  const st = statSync(dir);
  // Root in a user namespace overrides permissions only on inodes whose owner and group both map into it.
  if (mapped(who.uidMap, st.uid) && mapped(who.gidMap, st.gid)) return true;
  if (st.uid === who.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === who.gid || who.groups.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** The first directory on the way to `target` that `who` cannot search, if any. */
export function blockingDirectory(target: string, who: Who): string | undefined {
  const parts = path.resolve(target).split('/').filter(Boolean);
  let dir = '/';
  for (let i = 0; i < parts.length; i++) {
    try {
      if (!maySearch(dir, who)) return dir;
    } catch (err) {
      // gone (ENOENT, ENOTDIR) or unreadable to us too (EACCES, ELOOP): not the case this explains
      if (isCode(err, 'ENOENT', 'ENOTDIR', 'EACCES', 'ELOOP')) return undefined;
      throw err;
    }
    dir = path.join(dir, parts[i]!);
  }
  return undefined;
}

/**
 * `e` as it is, or, for an EACCES of a container with its own id maps, an error that names the host
 * directory its root cannot pass through and what to do.
 */
export function explainUnreachable(e: unknown, config: ContainerConfig): unknown {
  const ns = config.namespaces.user;
  if (!(e instanceof NsboxError) || e.code !== 'EACCES' || typeof ns !== 'object' || !ns.uidMap) return e;
  const uidMap = ns.uidMap;
  const gidMap = ns.gidMap ?? uidMap;
  const uid = hostOf(uidMap, 0);
  const gid = hostOf(gidMap, 0);
  if (uid === undefined || gid === undefined) return e;
  const who: Who = { uid, gid, groups: process.getgroups?.() ?? [], uidMap, gidMap };
  const needed = [
    ...(config.rootfs !== undefined ? [config.rootfs] : []),
    ...(config.layers ?? []),
    ...config.mounts.flatMap((m) => (m.type === 'bind' ? [m.source] : [])),
  ];
  for (const p of needed) {
    const dir = blockingDirectory(p, who);
    if (dir === undefined) continue;
    const st = statSync(dir);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    return new NsboxError(
      `${e.message}: the container's root is host uid ${uid} (its uid map), which cannot reach ${p}: ` +
        `${dir} (mode ${mode}, owner ${st.uid}:${st.gid}) does not let it search. ` +
        `Let others search it (chmod o+x ${dir}), or keep the container's files where uid ${uid} can reach them`,
      { code: e.code, ...(e.errno !== undefined ? { errno: e.errno } : {}), ...(e.syscall ? { syscall: e.syscall } : {}), path: dir, cause: e },
    );
  }
  return e;
}
