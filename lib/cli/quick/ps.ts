/**
 * The quick `nsbox ps`: bin/nsbox.js runs it from a bundle of its own (tools/bundle-cli.mjs), without
 * zod, the engine or the CLI's main bundle, so that `ps` starts within a few milliseconds of Node
 * itself (issue 14). It answers only what the store's read without the engine can answer
 * (engine/container-list.ts, engine/summary-check.ts), and otherwise prints nothing and answers
 * undefined: then bin/nsbox.js runs the full CLI, whose `ps` does the same read, asks the engine,
 * and reports errors (a bad flag included) in its own words.
 */
import { listedHealthStatus, readContainerList } from '../../engine/container-list.js';
import { writeOut } from '../output.js';
import { psOutput } from '../ps-output.js';

export async function run(argv: string[]): Promise<number | undefined> {
  let text: string | undefined;
  try {
    text = await psOutput(argv, { list: (all) => readContainerList({ all }), health: listedHealthStatus });
  } catch {
    // Whatever it was, nothing is printed yet: the full CLI does it again and says what (see above).
    return undefined;
  }
  if (text === undefined) return undefined;
  writeOut(text);
  return 0;
}
