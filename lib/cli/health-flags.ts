/**
 * `run`'s HEALTHCHECK flags as docker's CLI reads them: `--health-cmd` (a CMD-SHELL), the Go
 * durations `--health-interval --health-timeout --health-start-period --health-start-interval`,
 * `--health-retries`, and `--no-healthcheck` (the image's HEALTHCHECK off; not with the others).
 */
import { ValidationError } from '../errors.js';
import { parseGoDuration } from '../runtime/health-config.js';
import type { Healthcheck } from '../runtime/options.js';
import { flag, value, type FlagSpec, type Parsed } from './args.js';

export const HEALTH_FLAGS: FlagSpec[] = [
  { names: ['health-cmd'], kind: 'value' },
  { names: ['health-interval'], kind: 'value' },
  { names: ['health-timeout'], kind: 'value' },
  { names: ['health-start-period'], kind: 'value' },
  { names: ['health-start-interval'], kind: 'value' },
  { names: ['health-retries'], kind: 'value' },
  { names: ['no-healthcheck'], kind: 'bool' },
];

const DURATIONS = [
  ['health-interval', 'interval'],
  ['health-timeout', 'timeout'],
  ['health-start-period', 'startPeriod'],
  ['health-start-interval', 'startInterval'],
] as const;

/** The options' healthcheck; undefined when no flag asks for one (the image's applies). */
export function healthcheckFrom(p: Parsed): Healthcheck | undefined {
  const given = HEALTH_FLAGS.some((f) => f.names[0] !== 'no-healthcheck' && value(p, f.names[0]!) !== undefined);
  if (flag(p, 'no-healthcheck')) {
    if (given) throw new ValidationError('--no-healthcheck conflicts with --health-* options', 'no-healthcheck');
    return { test: ['NONE'] };
  }
  if (!given) return undefined;
  const cmd = value(p, 'health-cmd');
  const h: Healthcheck = cmd ? { test: ['CMD-SHELL', cmd] } : {};
  for (const [name, key] of DURATIONS) {
    const v = value(p, name);
    if (v === undefined) continue;
    const ms = parseGoDuration(v);
    if (ms < 0) throw new ValidationError(`--${name} cannot be negative`, name);
    if (ms > 0) h[key] = ms;
  }
  const retries = value(p, 'health-retries');
  if (retries !== undefined) {
    if (!/^-?\d+$/.test(retries)) throw new ValidationError(`invalid argument "${retries}" for "--health-retries" flag: strconv.ParseInt: parsing "${retries}": invalid syntax`, 'health-retries');
    if (Number(retries) < 0) throw new ValidationError('--health-retries cannot be negative', 'health-retries');
    if (Number(retries) > 0) h.retries = Number(retries);
  }
  return h;
}
