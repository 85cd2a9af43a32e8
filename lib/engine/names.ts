/**
 * Container names as docker has them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, shown with a leading "/" and
 * accepted with or without it; when none is given, an `adjective_surname` pair is generated.
 */
import { ValidationError } from '../errors.js';

/** A name as given by a user (the leading "/" is optional). */
export const NAME_PATTERN = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const adjectives = [
  'agile', 'amber', 'bold', 'brave', 'bright', 'calm', 'clever', 'cosmic', 'crisp', 'curious',
  'daring', 'deft', 'eager', 'fierce', 'gentle', 'glad', 'hardy', 'humble', 'keen', 'lively',
  'lucid', 'mellow', 'nimble', 'patient', 'quiet', 'rapid', 'serene', 'sharp', 'steady', 'swift',
  'tidy', 'vivid', 'wise', 'witty', 'zesty',
];

// People who shaped computing and science.
const surnames = [
  'babbage', 'backus', 'bohr', 'boole', 'cerf', 'curie', 'dijkstra', 'euler', 'faraday', 'fermi',
  'gauss', 'hamilton', 'hopper', 'johnson', 'kay', 'knuth', 'lamarr', 'lamport', 'liskov', 'lovelace',
  'maxwell', 'meitner', 'noether', 'pascal', 'perlman', 'ritchie', 'shannon', 'sammet', 'thompson', 'turing',
  'wilkes', 'wirth', 'yonath', 'zuse',
];

/** The stored form of a user-given name: validated, without the leading "/". */
export function canonicalName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new ValidationError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, 'name');
  }
  return name.startsWith('/') ? name.slice(1) : name;
}

/**
 * A fresh `adjective_surname` name that `isTaken` refuses; after a few collisions a number is
 * appended (`calm_turing3`), so it always ends.
 */
export function generateName(isTaken: (name: string) => boolean = () => false, random: () => number = Math.random): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length) % list.length]!;
  for (let attempt = 0; ; attempt++) {
    const base = `${pick(adjectives)}_${pick(surnames)}`;
    const name = attempt < 10 ? base : `${base}${Math.floor(random() * 10 ** Math.min(attempt - 9, 9))}`;
    if (!isTaken(name)) return name;
  }
}
