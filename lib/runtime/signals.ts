/** Signals are given and reported by name ('SIGTERM'); numbers only cross the native boundary. */
import { createRequire } from 'node:module';
import type * as Os from 'node:os';
import { ValidationError } from '../errors.js';

export type SignalName = keyof typeof Os.constants.signals;

/**
 * node:os's signal table, loaded on first use: its load (~0.4 ms) was a share of the start of the
 * quick commands (lib/cli/quick/), which read records (a signal name) but rarely a signal.
 * process.getBuiltinModule is Node >= 20.16; before it, a require does the same.
 */
let table: typeof Os.constants.signals | undefined;
const signals = () => (table ??= (process.getBuiltinModule ? process.getBuiltinModule('node:os') : (createRequire(import.meta.url)('node:os') as typeof Os)).constants.signals);

let byNumber: Map<number, SignalName> | undefined;
function names(): Map<number, SignalName> {
  if (!byNumber) {
    byNumber = new Map();
    for (const [name, num] of Object.entries(signals()) as Array<[SignalName, number]>) {
      if (!byNumber.has(num)) byNumber.set(num, name);
    }
  }
  return byNumber;
}

export function signalNumber(sig: SignalName | number | string): number {
  if (typeof sig === 'number') {
    if (Number.isInteger(sig) && sig > 0 && sig < 65) return sig;
    throw new ValidationError(`invalid signal: ${sig}`, 'signal');
  }
  const name = (sig.startsWith('SIG') ? sig : `SIG${sig}`).toUpperCase() as SignalName;
  const n = signals()[name];
  if (n === undefined) throw new ValidationError(`invalid signal: ${sig}`, 'signal');
  return n;
}

export function signalName(num: number): string {
  return names().get(num) ?? `SIG${num}`;
}
