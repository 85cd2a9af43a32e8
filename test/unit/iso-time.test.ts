import test from 'ava';
import { isoString } from '../../lib/iso-time.js';

test('isoString writes what toISOString writes', (t) => {
  const dates = [0, -1, 1, 253402300799999, 253402300800000, -62167219200000, -62167219200001, 8.64e15, -8.64e15, Date.parse('2026-12-06T20:31:59.577644841Z')].map((ms) => new Date(ms));
  // Spread over years 0–9999 and beyond, with every field's edges in reach.
  let seed = 14;
  for (let i = 0; i < 5000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    dates.push(new Date(((seed / 2 ** 31) * 2 - 1) * 4e14));
  }
  for (const d of dates) t.is(isoString(d), d.toISOString(), String(d.getTime()));
});

test('isoString throws toISOString’s RangeError for an invalid date', (t) => {
  t.throws(() => isoString(new Date('2026-13-01T00:00:00Z')), { instanceOf: RangeError, message: 'Invalid time value' });
});
