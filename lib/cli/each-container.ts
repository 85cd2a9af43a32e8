/**
 * The loop of docker's multi-container commands (stop, kill, rm): each reference in turn, its name
 * printed when done, an error reported without stopping the others; exit status 1 if any failed.
 */
import { ContainerStore } from '../engine/index.js';
import type { ContainerRecord } from '../engine/records.js';
import { ValidationError } from '../errors.js';

export async function eachContainer(command: string, refs: string[], fn: (record: ContainerRecord, store: ContainerStore, ref: string) => Promise<void>): Promise<number> {
  if (refs.length === 0) throw new ValidationError(`"nsbox ${command}" requires at least 1 argument.`, 'container');
  const store = await ContainerStore.open();
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(await store.get(ref), store, ref);
      process.stdout.write(`${ref}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
