/**
 * The loop of docker's multi-container commands (stop, kill, rm, start, restart, pause, unpause):
 * each reference in turn, its name printed when done, an error reported without stopping the
 * others; exit status 1 if any failed.
 */
import { Engine } from '../engine/index.js';
import { NotModifiedError, ValidationError } from '../errors.js';
import { openEngine } from './open-engine.js';

export async function eachContainer(command: string, refs: string[], fn: (engine: Engine, ref: string) => Promise<void>): Promise<number> {
  if (refs.length === 0) throw new ValidationError(`"nsbox ${command}" requires at least 1 argument.`, 'container');
  const engine = await openEngine();
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(engine, ref);
      process.stdout.write(`${ref}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Runs `fn`, taking docker's "already so" (304) as success. */
export async function unlessAlready(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof NotModifiedError)) throw e;
  }
}
