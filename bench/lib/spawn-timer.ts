// Times a program from the node process the way the nsbox row is timed: from just before the
// spawn to the child's 'exit' event, on the same event loop.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Command { file: string; args: string[] }

/** Runs the command once with stdout ignored and stderr kept in a file (shown when it fails);
 * resolves to the elapsed milliseconds. */
export function timeSpawn({ file, args }: Command): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-stderr-'));
  const fd = openSync(join(dir, 'stderr'), 'w+');
  const done = () => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  };
  return new Promise<number>((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', fd] });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code === 0) return resolve(ms);
      const stderr = readFileSync(join(dir, 'stderr'), 'utf8').trim();
      reject(new Error(`${[file, ...args].join(' ')} exited with ${signal ?? `status ${code}`}${stderr ? `: ${stderr}` : ''}`));
    });
  }).finally(done);
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Runs the command once, keeping stderr, to tell whether it works here and why not. */
export function probe({ file, args }: Command): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => resolve({ ok: false, reason: error.message }));
    child.once('close', (code, signal) => {
      if (code === 0) return resolve({ ok: true });
      const detail = stderr.trim().split('\n').at(-1) || 'no message';
      resolve({ ok: false, reason: `exit ${signal ?? code}: ${detail}` });
    });
  });
}
