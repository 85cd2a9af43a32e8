/**
 * nsbox ps [-a] [-q] [-n N] [--no-trunc] [--filter k=v]…: the engine's container records,
 * reconciled as they are read; docker's filters (engine/container-filters.ts). Read without loading
 * the engine (engine/container-list.ts) unless a record needs it. bin/nsbox.js runs quick/ps.ts
 * first, which is the same read (without filters) in a bundle of its own; this is where it falls
 * back to, and what runs without the bundle.
 */
import { checkContainerFilters, matchesContainerFilters } from '../../engine/container-filters.js';
import { readContainerList } from '../../engine/container-list.js';
import { healthStatusOf } from '../../engine/health.js';
import { writeOut } from '../output.js';
import { psOutput } from '../ps-output.js';

export default async function ps(argv: string[]): Promise<number> {
  const text = await psOutput(argv, {
    list: async (all) => (await readContainerList({ all })) ?? (await (await import('../open-engine.js')).openEngine()).list({ all }),
    health: healthStatusOf,
    filters: { check: checkContainerFilters, matches: matchesContainerFilters },
  });
  writeOut(text ?? '');
  return 0;
}
