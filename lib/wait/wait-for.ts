/**
 * `waitFor`: the readiness strategies of `Container.run`/`start` (one file each), validated here,
 * raced against the container's exit (which fails the wait at once) and a timeout. Either failure
 * is a `WaitError` naming what was awaited, how far it got, and the log's last lines.
 */
import * as z from 'zod';
import { ValidationError, WaitError } from '../errors.js';
import { validate } from '../runtime/options.js';
import { waitForAll } from './all.js';
import { waitForExec } from './exec.js';
import { waitForHealthy } from './healthy.js';
import { waitForHttp } from './http.js';
import { waitForLog } from './log.js';
import { waitForPort } from './port.js';
import type { WaitRun, WaitTarget } from './target.js';

const port = z.number().int().min(1).max(65535);
const timeout = z.number().int().positive().optional();

export type WaitFor =
  | { port: number; timeout?: number }
  | { log: RegExp | string; times?: number; timeout?: number }
  | { http: { path?: string; port: number; status?: number }; timeout?: number }
  | { healthy: true; timeout?: number }
  | { exec: string[]; timeout?: number }
  | { all: WaitFor[]; timeout?: number };

export const WaitForSchema: z.ZodType<WaitFor> = z.lazy(() =>
  z.union([
    z.object({ port, timeout }).strict(),
    z.object({ log: z.union([z.instanceof(RegExp), z.string().min(1)]), times: z.number().int().positive().optional(), timeout }).strict(),
    z.object({ http: z.object({ path: z.string().startsWith('/').optional(), port, status: z.number().int().min(100).max(599).optional() }).strict(), timeout }).strict(),
    z.object({ healthy: z.literal(true), timeout }).strict(),
    z.object({ exec: z.array(z.string()).min(1), timeout }).strict(),
    z.object({ all: z.array(WaitForSchema).min(1), timeout }).strict(),
  ]),
);

/** The default time a wait gets, in ms. */
export const DEFAULT_WAIT_TIMEOUT = 60_000;

/** What a strategy waits for, in words. */
export function describeWait(w: WaitFor): string {
  if ('port' in w) return `port ${w.port} to listen`;
  if ('log' in w) return `log ${typeof w.log === 'string' ? JSON.stringify(w.log) : String(w.log)}${w.times && w.times > 1 ? ` ×${w.times}` : ''}`;
  if ('http' in w) return `HTTP GET ${w.http.path ?? '/'} on port ${w.http.port} to answer ${w.http.status ?? '2xx'}`;
  if ('healthy' in w) return 'the healthcheck to say healthy';
  if ('exec' in w) return `${JSON.stringify(w.exec)} to exit 0`;
  return `all of: ${w.all.map(describeWait).join(', ')}`;
}

function start(target: WaitTarget, w: WaitFor, signal: AbortSignal): WaitRun {
  if ('port' in w) return waitForPort(target, w.port, signal);
  if ('log' in w) return waitForLog(target, w.log, w.times ?? 1, signal);
  if ('http' in w) return waitForHttp(target, w.http, signal);
  if ('healthy' in w) return waitForHealthy(target, signal);
  if ('exec' in w) return waitForExec(target, w.exec, signal);
  return waitForAll(w.all.map((x) => ({ what: describeWait(x), run: start(target, x, signal) })));
}

const TAIL = 20;

/**
 * Waits until `target` is ready as `spec` says, at most `spec.timeout` ms (default 60 s). Rejects
 * with a WaitError (timeout, exit) or the error of a strategy that cannot work (ValidationError).
 */
export async function waitFor(target: WaitTarget, spec: WaitFor, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const w = validate(WaitForSchema, spec, 'waitFor');
  const ms = w.timeout ?? DEFAULT_WAIT_TIMEOUT;
  const what = describeWait(w);
  const ac = new AbortController();
  const onOuter = () => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const run = start(target, w, ac.signal);
  // The strategies' own rejections after the abort are the abort's, not failures of their own.
  run.done.catch(() => undefined);
  const failure = async (code: 'ERR_WAIT_TIMEOUT' | 'ERR_WAIT_EXITED' | 'ERR_WAIT_FAILED', message: string) =>
    new WaitError(message, { code, awaited: what, logTail: await target.logTail(TAIL).catch((e: unknown) => [`(the log could not be read: ${(e as Error).message})`]) });
  try {
    await Promise.race([
      run.done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => void failure('ERR_WAIT_TIMEOUT', `${target.name}: timed out after ${ms} ms waiting for ${what} (${run.progress()})`).then(reject, reject), ms);
      }),
      target.exited(ac.signal).then(async (how) => {
        throw await failure('ERR_WAIT_EXITED', `${target.name} ended (${how}) while waiting for ${what} (${run.progress()})`);
      }),
    ]);
  } catch (e) {
    if (e instanceof WaitError || e instanceof ValidationError) throw e;
    throw await failure('ERR_WAIT_FAILED', `${target.name}: waiting for ${what} failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuter);
    ac.abort();
  }
}
