/** Entry of bin/nsbox-runc.js: run the command and exit (nothing of this process is to outlive it). */
import { runCli } from './cli.js';

export async function main(): Promise<void> {
  const code = await runCli();
  process.exit(code);
}
