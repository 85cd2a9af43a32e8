/** runtime-spec hooks: each run with the container's state as JSON on its stdin, in order, with its timeout. */
import { NsboxError } from '../errors.js';
import { childProcess } from './builtin.js';
import type { HookKind, OciConfig, OciHook } from './config.js';

export interface OciState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  rootfs?: string;
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/**
 * Runs the config's hooks of one kind; the first failure is thrown (HookError). poststart and
 * poststop hooks are past the point of no return: each failure is a warning, and the rest still
 * run (runtime-spec's lifecycle, steps 9 and 12).
 */
export async function runHooks(cfg: OciConfig, kind: HookKind, state: OciState): Promise<void> {
  const warnOnly = kind === 'poststart' || kind === 'poststop';
  for (const h of cfg.hooks?.[kind] ?? []) {
    const run = runHook(h, kind, state);
    if (!warnOnly) await run;
    else await run.catch((e: unknown) => process.emitWarning(`nsbox-runc: ${(e as Error).message}`));
  }
}

function runHook(h: OciHook, kind: HookKind, state: OciState): Promise<void> {
  const [argv0, ...args] = h.args ?? [h.path];
  return new Promise<void>((resolve, reject) => {
    const child = childProcess().spawn(h.path, args, { argv0: argv0 ?? h.path, env: Object.fromEntries((h.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])), stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = h.timeout ? setTimeout(() => child.kill('SIGKILL'), h.timeout * 1000) : undefined;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new NsboxError(`${kind} hook ${h.path}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new NsboxError(`${kind} hook ${h.path} failed: ${signal ? `killed by ${signal}${timer ? ' (timeout)' : ''}` : `exit status ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`, { code: 'ERR_HOOK' }));
    });
    // A hook that does not read its stdin is fine.
    child.stdin!.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin!.end(JSON.stringify(state));
  });
}
