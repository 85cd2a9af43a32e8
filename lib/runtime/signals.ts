/** Signals are given and reported by name ('SIGTERM'); numbers only cross the native boundary. */
import { constants } from 'node:os';
import { ValidationError } from '../errors.js';

export type SignalName = keyof typeof constants.signals;

const byNumber = new Map<number, SignalName>();
for (const [name, num] of Object.entries(constants.signals) as Array<[SignalName, number]>) {
  if (!byNumber.has(num)) byNumber.set(num, name);
}

export function signalNumber(sig: SignalName | number | string): number {
  if (typeof sig === 'number') {
    if (Number.isInteger(sig) && sig > 0 && sig < 65) return sig;
    throw new ValidationError(`invalid signal: ${sig}`, 'signal');
  }
  const name = (sig.startsWith('SIG') ? sig : `SIG${sig}`).toUpperCase() as SignalName;
  const n = constants.signals[name];
  if (n === undefined) throw new ValidationError(`invalid signal: ${sig}`, 'signal');
  return n;
}

export function signalName(num: number): string {
  return byNumber.get(num) ?? `SIG${num}`;
}
