/** `nsbox exec`'s flags: the full command (commands/exec.ts) and the quick one (quick/exec.ts) read them alike. */
import type { FlagSpec } from './args.js';

export const EXEC_FLAGS: FlagSpec[] = [
  { names: ['interactive', 'i'], kind: 'bool' },
  { names: ['tty', 't'], kind: 'bool' },
  { names: ['detach', 'd'], kind: 'bool' },
  { names: ['env', 'e'], kind: 'list' },
  { names: ['env-file'], kind: 'list' },
  { names: ['workdir', 'w'], kind: 'value' },
  { names: ['user', 'u'], kind: 'value' },
  { names: ['privileged'], kind: 'bool' },
];
