/**
 * Node built-ins nsbox-runc needs on a few paths only (child_process for hooks and `ps`, which
 * also loads net and stream), loaded at their first use: a `create` without hooks never pays them.
 */
import { createRequire } from 'node:module';
import type * as ChildProcess from 'node:child_process';

let cp: typeof ChildProcess | undefined;

export function childProcess(): typeof ChildProcess {
  // process.getBuiltinModule is Node >= 20.16; before it, a require does the same.
  cp ??= process.getBuiltinModule ? process.getBuiltinModule('node:child_process') : (createRequire(import.meta.url)('node:child_process') as typeof ChildProcess);
  return cp;
}
