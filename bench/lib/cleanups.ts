/** Undo steps run in reverse order when a benchmark ends, however it ends (exit, Ctrl-C, SIGTERM). */
import { rmSync } from 'node:fs';

export function cleanupsFor(work: string): Array<() => void> {
  const cleanups: Array<() => void> = [() => rmSync(work, { recursive: true, force: true })];
  process.on('exit', () => {
    for (const undo of cleanups.reverse()) {
      try {
        undo();
      } catch (error) {
        console.error(`cleanup: ${(error as Error).message}`);
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  return cleanups;
}
