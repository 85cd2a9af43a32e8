/** Whether a program is on PATH (a peer that is missing is reported, not fatal). */
import { execFileSync } from 'node:child_process';

export function hasCommand(file: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${file}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
