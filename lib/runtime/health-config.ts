/**
 * A container's HEALTHCHECK as docker resolves it: the caller's options over the image's config
 * (daemon/create's merge: an empty test or a zero time takes the image's), docker's defaults for
 * the rest, and the command the probe runs. Times are milliseconds (the image's are nanoseconds).
 */
import * as z from 'zod';
import { ValidationError } from '../errors.js';
import type { Healthcheck } from './options.js';
import { goDurationNs } from '../go-duration.js';

/** docker's defaults (daemon/health.go). */
export const HEALTH_DEFAULTS = { interval: 30_000, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 3 } as const;

/** What a probe runs and when: every field set. */
export interface ResolvedHealthcheck {
  argv: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

const ns = z.number().int().nonnegative().optional();
/** An image config's Healthcheck (docker's HealthConfig: nanoseconds). */
const ImageHealthcheckSchema = z.object({
  Test: z.array(z.string()).nullish(),
  Interval: ns,
  Timeout: ns,
  StartPeriod: ns,
  StartInterval: ns,
  Retries: z.number().int().nonnegative().optional(),
});

const toMs = (n: number | undefined) => (n ? Math.max(1, Math.round(n / 1e6)) : undefined);

/** The image's Healthcheck in the options' terms; undefined when it has none (or one this cannot read). */
export function imageHealthcheck(raw: unknown): Healthcheck | undefined {
  const r = ImageHealthcheckSchema.safeParse(raw);
  if (raw === undefined || raw === null || !r.success) return undefined;
  const h = r.data;
  const out: Healthcheck = {};
  if (h.Test?.length) out.test = h.Test;
  for (const [k, v] of [['interval', h.Interval], ['timeout', h.Timeout], ['startPeriod', h.StartPeriod], ['startInterval', h.StartInterval]] as const) {
    const m = toMs(v);
    if (m !== undefined) out[k] = m;
  }
  if (h.Retries) out.retries = h.Retries;
  return out;
}

/** docker's merge: the caller's fields, the image's where the caller's are empty or zero. */
export function mergeHealthcheck(user: Healthcheck | undefined, image: Healthcheck | undefined): Healthcheck | undefined {
  if (!user) return image;
  if (!image) return user;
  const pick = (a: number | undefined, b: number | undefined) => (a ? a : b);
  const out: Healthcheck = { test: user.test?.length ? user.test : (image.test ?? []) };
  for (const k of ['interval', 'timeout', 'startPeriod', 'startInterval', 'retries'] as const) {
    const v = pick(user[k], image[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The probe's settings, or undefined when there is none (no test, or ['NONE']). `shell`: the image's Shell. */
export function resolveHealthcheck(h: Healthcheck | undefined, shell: string[] = ['/bin/sh', '-c']): ResolvedHealthcheck | undefined {
  const test = h?.test ?? [];
  if (test.length === 0 || test[0] === 'NONE') return undefined;
  const argv = test[0] === 'CMD-SHELL' ? [...shell, test[1]!] : test.slice(1);
  return {
    argv,
    interval: h!.interval || HEALTH_DEFAULTS.interval,
    timeout: h!.timeout || HEALTH_DEFAULTS.timeout,
    startPeriod: h!.startPeriod || HEALTH_DEFAULTS.startPeriod,
    startInterval: h!.startInterval || HEALTH_DEFAULTS.startInterval,
    retries: h!.retries || HEALTH_DEFAULTS.retries,
  };
}

/** docker's Config.Healthcheck (nanoseconds; zero fields left out) for inspect. */
export function dockerHealthConfig(h: Healthcheck | undefined): Record<string, unknown> | undefined {
  if (!h) return undefined;
  const out: Record<string, unknown> = { Test: h.test ?? [] };
  const put = (k: string, v: number | undefined) => {
    if (v) out[k] = v * 1e6;
  };
  put('Interval', h.interval);
  put('Timeout', h.timeout);
  put('StartPeriod', h.startPeriod);
  put('StartInterval', h.startInterval);
  if (h.retries) out.Retries = h.retries;
  return out;
}

/** A Go duration ("1m30s", "100ms", "0") in milliseconds (rounded up to 1 for a positive one below it). */
export function parseGoDuration(text: string): number {
  const ns = goDurationNs(text);
  if (ns === undefined) throw new ValidationError(`time: invalid duration ${JSON.stringify(text)}`, 'duration');
  const ms = ns / 1e6;
  if (ms < 0) return ms;
  return ms > 0 && ms < 1 ? 1 : Math.round(ms);
}
