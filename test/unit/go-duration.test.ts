import test from 'ava';
import { goDurationNs } from '../../lib/go-duration.js';
import { parseGoDuration } from '../../lib/runtime/health-config.js';
import { parseUntil } from '../../lib/network/network-filters.js';

test('Go durations in nanoseconds, as time.ParseDuration reads them', (t) => {
  t.is(goDurationNs('0'), 0);
  t.is(goDurationNs('100ms'), 100e6);
  t.is(goDurationNs('1m30s'), 90e9);
  t.is(goDurationNs('1.5h'), 5400e9);
  t.is(goDurationNs('.5s'), 0.5e9);
  t.is(goDurationNs('2us'), 2000);
  t.is(goDurationNs('2\u00b5s'), 2000);
  t.is(goDurationNs('-2h'), -7200e9);
  t.is(goDurationNs('+3s'), 3e9);
  for (const bad of ['', '5', '1x', 's', '1h 2m', '--1s', '1.2.3s']) t.is(goDurationNs(bad), undefined, bad);
});

test('the health flags and the until filter read durations through the same parser', (t) => {
  t.is(parseGoDuration('1m30s'), 90_000);
  t.is(parseGoDuration('1ns'), 1, 'a positive duration below 1 ms rounds up to 1 ms');
  t.throws(() => parseGoDuration('5'), { message: /invalid duration "5"/ });
  const now = new Date('2026-12-06T12:00:00Z');
  t.is(parseUntil('1h30m', now).toISOString(), '2026-12-06T10:30:00.000Z');
  t.is(parseUntil('1700000000', now).getTime(), 1700000000_000);
  t.is(parseUntil('2026-12-01T00:00:00Z', now).toISOString(), '2026-12-01T00:00:00.000Z');
});
