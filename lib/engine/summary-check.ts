/**
 * What `nsbox ps` reads of the store, checked without a schema library: a record's summary
 * (record-summary.ts's ContainerSummarySchema), the shim's state.json and the health status of
 * health.json (lib/runtime/bundle.ts's schemas). Building and running zod's schemas is most of what
 * a listing would cost a short-lived command (issue 14: `ps` within 15 ms of `node -e 0`), and the
 * quick `ps` bundle (tools/bundle-cli.mjs) carries no zod at all.
 *
 * Each check accepts a subset of what its schema accepts and gives the schema's output (defaults
 * filled in); whatever it does not accept is left to the engine, which reads it through the schema
 * and reports what is wrong (test/unit/summary-check.test.ts holds each check to its schema).
 * A time is read as the schema's `z.iso.datetime({ offset: true })` reads it (isTime).
 */
import { DIGEST_PATTERN } from '../storage/digest-format.js';
import type { HealthStatus, ShimState } from '../runtime/bundle.js';
import type { ContainerSummary } from './record-summary.js';

/** Thrown by a check for anything it leaves to the engine (never shown: the caller asks the engine). */
export class LeftToEngine extends Error {
  override name = 'LeftToEngine';
}

const refuse = (what: string): never => {
  throw new LeftToEngine(what);
};

/** The shape of an RFC 3339 time with seconds (fraction and offset optional as zod has them); isTime checks the ranges. */
const DATETIME = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|[+-](\d\d):(\d\d))$/;
const ID = /^[0-9a-f]{64}$/;
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ABS_PATH = /^\/[^\0]*$/;
const SIGNAL = /^SIG[A-Z0-9+-]+$/;
const STATES = ['created', 'running', 'paused', 'exited', 'dead'];
const PROTOCOLS = ['tcp', 'udp', 'sctp'];
const MAX_PID = 2 ** 22;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min = -Infinity, max = Infinity): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/**
 * zod's datetime({ offset: true }) without its pattern: the same language (a Gregorian date with
 * February 29 in leap years only, hours 00-23, minutes and seconds 00-59, an offset of 00:00 to
 * 23:59), by a plain pattern and the ranges in numbers. zod's one pattern holds every month's and
 * leap year's case as alternatives, which V8 compiles at its first use in a process: ~0.5-1 ms of
 * a short-lived `ps` (test/unit/summary-check.test.ts compares the two).
 */
const isTime = (v: unknown): v is string => {
  if (typeof v !== 'string') return false;
  const m = DATETIME.exec(v);
  if (!m) return false;
  const [y, mo, d, h, mi, s, oh, om] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as [number, number, number, number, number, number, number, number];
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return mo >= 1 && mo <= 12 && d >= 1 && d <= (mo === 2 && leap ? 29 : DAYS[mo - 1]!) && h <= 23 && mi <= 59 && s <= 59 && oh <= 23 && om <= 59;
};
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
/** Only these keys (zod's strict objects). */
const onlyKeys = (o: Obj, keys: string[]) => Object.keys(o).every((k) => keys.includes(k));

function checkSupervisor(s: unknown): void {
  if (!isObj(s) || !isInt(s.pid, 1, MAX_PID)) return refuse('supervisor');
  if (s.kind === 'shim') {
    if (!onlyKeys(s, ['kind', 'pid', 'bundle', 'pidStartTime'])) refuse('supervisor');
    if (typeof s.bundle !== 'string' || !ABS_PATH.test(s.bundle)) refuse('supervisor.bundle');
    if (s.pidStartTime !== undefined && !isInt(s.pidStartTime, 0)) refuse('supervisor.pidStartTime');
  } else if (s.kind === 'process') {
    if (!onlyKeys(s, ['kind', 'pid', 'pidStartTime', 'cgroupPaths']) || !isInt(s.pidStartTime, 0)) refuse('supervisor');
    if (s.cgroupPaths !== undefined && !(isObj(s.cgroupPaths) && Object.values(s.cgroupPaths).every((d) => typeof d === 'string' && ABS_PATH.test(d)))) refuse('supervisor.cgroupPaths');
  } else refuse('supervisor.kind');
}

function checkNetwork(n: unknown): Obj {
  if (!isObj(n)) return refuse('network');
  if (n.state === undefined) return n;
  const st = n.state;
  if (!isObj(st)) return refuse('network.state');
  const ports = st.ports === undefined ? [] : st.ports;
  if (!Array.isArray(ports)) return refuse('network.state.ports');
  for (const p of ports) {
    if (!isObj(p) || !onlyKeys(p, ['containerPort', 'protocol', 'hostIp', 'hostPort'])) refuse('network.state.ports');
    const q = p as Obj;
    if (!isInt(q.containerPort, 0, 65535) || !isInt(q.hostPort, 0, 65535) || typeof q.hostIp !== 'string' || !PROTOCOLS.includes(q.protocol as string)) refuse('network.state.ports');
  }
  const endpoints = st.endpoints === undefined ? [] : st.endpoints;
  if (!Array.isArray(endpoints)) return refuse('network.state.endpoints');
  for (const e of endpoints) {
    if (!isObj(e) || (e.ipv6Address !== undefined && typeof e.ipv6Address !== 'string')) refuse('network.state.endpoints');
  }
  return { ...n, state: { ...st, ports, endpoints } };
}

/** A record as ContainerSummarySchema gives it (defaults filled in), when this check can tell it is one. */
export function checkSummary(v: unknown): ContainerSummary {
  if (!isObj(v)) return refuse('record');
  const r = v;
  if (typeof r.id !== 'string' || !ID.test(r.id)) refuse('id');
  if (typeof r.name !== 'string' || !NAME.test(r.name)) refuse('name');
  if (r.image !== undefined) {
    const i = r.image;
    if (!isObj(i) || !onlyKeys(i, ['ref', 'digest']) || typeof i.ref !== 'string' || i.ref === '' || typeof i.digest !== 'string' || !DIGEST_PATTERN.test(i.digest)) refuse('image');
  }
  if (r.rootfs !== undefined && (typeof r.rootfs !== 'string' || !ABS_PATH.test(r.rootfs))) refuse('rootfs');
  if (r.image !== undefined && r.rootfs !== undefined) refuse('rootfs');
  if (r.entrypoint !== undefined && !isStrings(r.entrypoint)) refuse('entrypoint');
  if (r.command !== undefined && !isStrings(r.command)) refuse('command');
  if (!isTime(r.created)) refuse('created');
  if (r.startedAt !== undefined && !isTime(r.startedAt)) refuse('startedAt');
  if (r.finishedAt !== undefined && !isTime(r.finishedAt)) refuse('finishedAt');
  if (r.state !== undefined && !STATES.includes(r.state as string)) refuse('state');
  if (r.exitCode !== undefined && r.exitCode !== null && !isInt(r.exitCode)) refuse('exitCode');
  if (r.signal !== undefined && r.signal !== null && (typeof r.signal !== 'string' || !SIGNAL.test(r.signal))) refuse('signal');
  if (r.oomKilled !== undefined && typeof r.oomKilled !== 'boolean') refuse('oomKilled');
  if (r.error !== undefined && typeof r.error !== 'string') refuse('error');
  if (r.restartCount !== undefined && !isInt(r.restartCount, 0)) refuse('restartCount');
  if (r.supervisor !== undefined) checkSupervisor(r.supervisor);
  return {
    ...r,
    entrypoint: r.entrypoint ?? [],
    command: r.command ?? [],
    state: r.state ?? 'created',
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    oomKilled: r.oomKilled ?? false,
    restartCount: r.restartCount ?? 0,
    ...(r.network === undefined ? {} : { network: checkNetwork(r.network) }),
  } as ContainerSummary;
}

/** state.json as ShimStateSchema gives it (its unknown keys dropped). */
export function checkShimState(v: unknown): ShimState {
  if (!isObj(v)) return refuse('state.json');
  const { status, pid, shimPid, restartCount, startedAt } = v;
  if (!['running', 'restarting', 'exited', 'stopped'].includes(status as string)) refuse('state.json status');
  if (!isInt(pid, 0) || !isInt(shimPid, 1) || !isInt(restartCount, 0)) refuse('state.json pids');
  if (startedAt !== null && !isTime(startedAt)) refuse('state.json startedAt');
  return { status, pid, shimPid, restartCount, startedAt } as ShimState;
}

/** The Status of health.json when the whole file is as ShimHealthSchema reads it. */
export function checkHealthStatus(v: unknown): HealthStatus {
  if (!isObj(v)) return refuse('health.json');
  if (!['starting', 'healthy', 'unhealthy'].includes(v.Status as string) || !isInt(v.FailingStreak, 0)) refuse('health.json');
  const log = v.Log;
  if (!Array.isArray(log) || log.length > 5) return refuse('health.json Log');
  for (const e of log) {
    if (!isObj(e) || !isTime(e.Start) || !isTime(e.End) || !isInt(e.ExitCode) || typeof e.Output !== 'string') refuse('health.json Log');
  }
  return v.Status as HealthStatus;
}
