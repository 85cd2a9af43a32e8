/**
 * `calls`: what the C++ `nsbox-runc` (cpp/runc/) needs to serve `state`, `start`, `kill`, `delete`,
 * `pause`, `resume` and `ps --format json` without starting Node, compiled here at `create` from the
 * state and the container's cgroup. Policy stays in TypeScript: the file names the exact cgroup
 * files and directories to touch, which commands must still go to Node (those with hooks to run),
 * and the `state` JSON as runc prints it with two holes (pid, status). Without the file (a path with
 * a newline, or a state dir written by an older nsbox-runc) every command goes to Node.
 *
 * Format (one record a line, fields split at the first space; the last field may hold spaces):
 *   nsbox-runc-calls 1
 *   pid <host pid>            start <field 22 of /proc/PID/stat>
 *   node <command>            a command the C++ side hands to Node (its hooks run there)
 *   procs <dir>               a directory whose cgroup.procs lists the container's processes
 *   freezer-v1 <dir>          freezer.state there;  freezer-v2 <dir>: cgroup.freeze/cgroup.events
 *   kill <dir>                a cgroup2 directory with cgroup.kill
 *   rmdir <dir>               removed with its sub-cgroups at delete (EBUSY retried),
 *   parent <dir>              then each parent line after it (nsbox-named levels) until one is in use
 *   state                     the rest of the file: the state JSON, \x01P for the pid, \x01S for the status
 */
import { madeByNsbox } from '../cgroup/cgroupfs.js';
import type { CgroupLayout } from '../cgroup/detect.js';
import type { CgroupDriver } from '../cgroup/index.js';
import { cgroupRemoval, unifiedKillFile } from '../cgroup/native-ops.js';
import { cgroupLayout } from '../runtime/run-root.js';
import { writeAtomic, type StateFile } from './state.js';
import { ociState } from './status.js';

export const CALLS = 'calls';

/** The C++ side's commands that run hooks, by the hook kinds they run. */
const HOOKED: Record<string, string[]> = { start: ['startContainer', 'poststart'], delete: ['poststop'] };

/** The file's text, or undefined when a path cannot be written one to a line. */
/** `made`: whether nsbox made a parent level (mkdirLevels' mark; only those are climbed). */
export function callFileText(s: StateFile, paths: Readonly<Record<string, string>>, layout: CgroupLayout, hasKillFile: boolean, made: (dir: string) => boolean = madeByNsbox): string | undefined {
  const lines = ['nsbox-runc-calls 1', `pid ${s.pid}`, `start ${s.start}`];
  for (const [cmd, kinds] of Object.entries(HOOKED)) if (kinds.some((k) => (s.config.hooks?.[k as keyof NonNullable<typeof s.config.hooks>] ?? []).length > 0)) lines.push(`node ${cmd}`);
  const removal = cgroupRemoval(paths, layout, hasKillFile, made);
  for (const d of removal.procs) lines.push(`procs ${d}`);
  if (removal.freezer !== undefined) lines.push(`${removal.freezerV2 ? 'freezer-v2' : 'freezer-v1'} ${removal.freezer}`);
  if (removal.kill !== undefined) lines.push(`kill ${removal.kill}`);
  for (const [d, ...parents] of removal.rmdirs) lines.push(`rmdir ${d}`, ...parents.map((p) => `parent ${p}`));
  if (lines.some((l) => l.includes('\n'))) return undefined;
  const json = JSON.stringify(ociState(s, 'created'), null, '  ');
  const hole = `\n  "pid": ${s.pid},\n  "status": "created",\n`;
  // Top-level keys sit at an indent of two, once each: the hole is found exactly once.
  if (json.indexOf(hole) < 0 || json.indexOf(hole) !== json.lastIndexOf(hole)) return undefined;
  return `${lines.join('\n')}\nstate\n${json.replace(hole, '\n  "pid": \x01P,\n  "status": "\x01S",\n')}`;
}

export async function writeCallFile(file: string, s: StateFile, cgroup: CgroupDriver): Promise<void> {
  const text = callFileText(s, cgroup.paths, await cgroupLayout(), unifiedKillFile(cgroup.paths));
  if (text !== undefined) writeAtomic(file, text);
}
