/**
 * The bundle of a detached container: the directory `nsbox-shim` (cpp/shim/) and TypeScript share.
 * Every file in it is described here, with the schema of what it holds (the names themselves are in
 * bundle-files.ts, which needs no zod); the C++ writer matches these (cpp/shim/bundle-files.h; test/integration/shim-bundle.test.ts reads what the real shim wrote).
 *
 *   plan.bin      ours: the spawn plan and the shim's settings (plan-wire.ts), read once at start;
 *                 startDetached passes these bytes on the shim's stdin instead (--plan-stdin)
 *   cgroup.json   ours: the container's cgroup paths, written before the shim starts
 *   shim.pid      the shim's pid while it runs
 *   state.json    the shim's view, rewritten atomically at every change
 *   exit.json     the last exit, written atomically (between restarts: the last run's)
 *   container.log stdout/stderr as JSON lines (docker's json-file)
 *   attach.sock   attach: output, stdin, resize, exits (protocol in cpp/shim/attach.h)
 *   events.sock   events only: start, exit, oom, state, health (protocol in cpp/shim/attach.h, shim-events.ts)
 *   health.json   the HEALTHCHECK's state (docker's State.Health), rewritten at every probe
 *                 (cpp/shim/health.cc); only for a container with a healthcheck
 *   exec.json     ours: the spawn plan of a plain `exec` (exec-template.ts), written at each start,
 *                 so that the quick `nsbox exec` needs neither the engine nor the options' schema
 *
 * Readers here answer `undefined` for a file that is not there (the shim has not written it yet,
 * or has removed it); a file that is there but does not match its schema is an error that names it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { ValidationError } from '../errors.js';
import { BundleFile, bundlePath, type BundleFileName } from './bundle-files.js';

export { BundleFile, bundlePath, type BundleFileName } from './bundle-files.js';

const timestamp = z.iso.datetime({ offset: true });
/** A signal's name as the shim writes it ('SIGKILL'; a number for one without a name: '34'). */
const signal = z.string().regex(/^(SIG[A-Z0-9+-]+|\d+)$/);

/** state.json. */
export const ShimStateSchema = z.object({
  status: z.enum(['running', 'restarting', 'exited', 'stopped']),
  /** The container's pid (0 when it is not running). */
  pid: z.number().int().nonnegative(),
  shimPid: z.number().int().positive(),
  restartCount: z.number().int().nonnegative(),
  startedAt: timestamp.nullable(),
});
export type ShimState = z.infer<typeof ShimStateSchema>;

/** exit.json, and the `exit` frame of attach and events. */
export const ShimExitSchema = z.object({
  /** null when a signal ended it. */
  exitCode: z.number().int().nullable(),
  signal: signal.nullable(),
  finishedAt: timestamp,
  /**
   * The kernel's OOM killer killed a process of the container's cgroup during this run. Shims
   * of nsbox 0.1 (still running after an upgrade) did not write it.
   */
  oomKilled: z.boolean().default(false),
  /** Set when a restart could not start the container (then exitCode is 127). */
  error: z.string().optional(),
});
export type ShimExit = z.infer<typeof ShimExitSchema>;

/** docker's health statuses: `starting` until the first passing probe (or the retries' failures). */
export const HealthStatusSchema = z.enum(['starting', 'healthy', 'unhealthy']);
export type HealthStatus = z.infer<typeof HealthStatusSchema>;

/** One probe's result (docker's HealthcheckResult); Output cut at 4096 bytes, then "...". */
export const HealthResultSchema = z.object({
  Start: timestamp,
  End: timestamp,
  /** 0 passed; -1 timed out or could not run; else the probe's code (128 + a signal). */
  ExitCode: z.number().int(),
  Output: z.string(),
});
export type HealthResult = z.infer<typeof HealthResultSchema>;

/**
 * health.json: docker's State.Health as is. Status is `unhealthy` once the container has exited
 * (docker's monitor leaves it so); the log keeps the last 5 results, across restarts.
 */
export const ShimHealthSchema = z.object({
  Status: HealthStatusSchema,
  FailingStreak: z.number().int().nonnegative(),
  Log: z.array(HealthResultSchema).max(5),
});
export type ShimHealth = z.infer<typeof ShimHealthSchema>;

/** One line of container.log (docker's json-file format). */
export const LogEntrySchema = z.object({
  log: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  time: timestamp,
});
export type LogEntry = z.infer<typeof LogEntrySchema>;

/**
 * The frames of events.sock (cpp/shim/attach.h): `state` first (the state as it is on connecting)
 * and at every change, `start` at each (re)start, `exit` at each exit, `oom` when the OOM killer
 * killed in the container's cgroup (`oomKills`: kills in this run so far), `health` when the
 * HEALTHCHECK's status changes (`starting` at each start, as health.json says). A final state
 * ('exited' or 'stopped') comes last, then the shim hangs up. Types not listed here are newer
 * shims' and are skipped by readers.
 */
export const ShimEventSchema = z.discriminatedUnion('type', [
  ShimStateSchema.extend({ type: z.literal('state') }),
  z.object({ type: z.literal('start'), pid: z.number().int().positive(), startedAt: timestamp, restartCount: z.number().int().nonnegative() }),
  ShimExitSchema.extend({ type: z.literal('exit') }),
  z.object({ type: z.literal('oom'), oomKills: z.number().int().positive() }),
  z.object({ type: z.literal('health'), status: HealthStatusSchema, failingStreak: z.number().int().nonnegative() }),
]);
export type ShimEvent = z.infer<typeof ShimEventSchema>;
export const SHIM_EVENT_TYPES: ReadonlySet<string> = new Set(['state', 'start', 'exit', 'oom', 'health']);

/** cgroup.json: the container's cgroup directory in each hierarchy ('memory', 'unified', …). */
export const CgroupPathsSchema = z.record(z.string(), z.string().startsWith('/'));
export type CgroupPaths = z.infer<typeof CgroupPathsSchema>;

/** What the shim's report on stdout says: started, or why not. */
export const ShimReportSchema = z.union([
  // shimStartTime: field 22 of the shim's /proc/PID/stat; startedAt: the container's start, as state.json has it.
  z.object({ shimPid: z.number().int().positive(), pid: z.number().int().positive(), shimStartTime: z.number().int().nonnegative().optional(), startedAt: z.string().optional() }),
  z.object({
    error: z.object({
      message: z.string(),
      code: z.string().optional(),
      errno: z.number().int().optional(),
      syscall: z.string().optional(),
      path: z.string().optional(),
    }),
  }),
]);
export type ShimReport = z.infer<typeof ShimReportSchema>;

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

async function readTextAsync(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** `text` parsed as JSON and checked; a ValidationError naming `file` otherwise. */
export function parseBundleJson<T>(schema: z.ZodType<T>, text: string, file: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`${file} is not valid JSON: ${(e as Error).message}`, file);
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ValidationError(`${file} does not match its schema: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`, file, r.error);
  }
  return r.data;
}

function reader<T>(schema: z.ZodType<T>, name: BundleFileName) {
  const sync = (bundle: string): T | undefined => {
    const file = bundlePath(bundle, name);
    const text = readText(file);
    return text === undefined ? undefined : parseBundleJson(schema, text, file);
  };
  const async = async (bundle: string): Promise<T | undefined> => {
    const file = bundlePath(bundle, name);
    const text = await readTextAsync(file);
    return text === undefined ? undefined : parseBundleJson(schema, text, file);
  };
  return [sync, async] as const;
}

/** state.json, or undefined before the shim wrote it. */
export const [readState, readStateAsync] = reader(ShimStateSchema, 'state');
/** The last exit recorded in the bundle, or undefined while the container has not exited. */
export const [readExit, readExitAsync] = reader(ShimExitSchema, 'exit');
const [readCgroupJson] = reader(CgroupPathsSchema, 'cgroup');
/** health.json, or undefined for a container without a healthcheck (or not started since it had one). */
export const [readHealth, readHealthAsync] = reader(ShimHealthSchema, 'health');

/** The cgroup paths the container was placed in ({} when it has none or the file is not there). */
export const readCgroupPaths = (bundle: string): CgroupPaths => readCgroupJson(bundle) ?? {};

/** The shim's pid while it runs (it removes shim.pid once done with its container, before it lets its clients go and exits). */
export function readShimPid(bundle: string): number | undefined {
  const text = readText(bundlePath(bundle, 'shimPid'));
  if (text === undefined) return undefined;
  const pid = Number(text.trim());
  // Written atomically by the shim, so anything else is not a shim's: no pid to signal.
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** container.log's entries, oldest first. */
export function readLog(bundle: string): LogEntry[] {
  const file = bundlePath(bundle, 'log');
  const text = readText(file);
  if (text === undefined) return [];
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseBundleJson(LogEntrySchema, l, file));
}

/**
 * cgroup.json, written before the shim starts, so that whoever finds the bundle can remove the
 * cgroup. Not fsynced: it serves after a crash of a process (the page cache has it), and after a
 * crash of the machine the cgroups it names are gone with it. On this thread (a write and a rename
 * of a small file, without a trip through the thread pool for each).
 */
export function writeCgroupPaths(bundle: string, paths: CgroupPaths): void {
  const tmp = join(bundle, `.${BundleFile.cgroup}.tmp`);
  writeFileSync(tmp, JSON.stringify(CgroupPathsSchema.parse(paths)), { mode: 0o644 });
  renameSync(tmp, bundlePath(bundle, 'cgroup'));
}
