/**
 * docker's credential helper protocol: `docker-credential-<name> get|store|erase`, the server on
 * stdin (get, erase) or `{ ServerURL, Username, Secret }` (store); `get` answers the same JSON, or
 * fails saying "credentials not found". As docker-credential-helpers' client speaks it.
 */
import { spawn } from 'node:child_process';
import * as z from 'zod';
import { NsboxError } from '../../errors.js';
import type { Credentials } from './credentials.js';

const GetAnswerSchema = z.looseObject({ ServerURL: z.string().optional(), Username: z.string(), Secret: z.string() });

/** The helper's program for `docker-credential-<name>`. */
export const helperProgram = (name: string) => `docker-credential-${name}`;

function call(name: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperProgram(name), [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(new NsboxError(`credential helper ${helperProgram(name)}: ${err.code === 'ENOENT' ? 'not found in PATH' : err.message}`, { code: err.code ?? 'EHELPER', cause: err })));
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

const notFound = (text: string) => /credentials not found/i.test(text);

/** The helper's credentials for `server`, or undefined when it has none. */
export async function helperGet(name: string, server: string): Promise<Credentials | undefined> {
  const r = await call(name, 'get', server);
  if (r.code !== 0) {
    if (notFound(r.stdout) || notFound(r.stderr)) return undefined;
    throw new NsboxError(`credential helper ${helperProgram(name)} get ${server}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`, { code: 'EHELPER' });
  }
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch (err) {
    throw new NsboxError(`credential helper ${helperProgram(name)} get ${server}: not JSON`, { code: 'EHELPER', cause: err });
  }
  const parsed = GetAnswerSchema.safeParse(json);
  if (!parsed.success) throw new NsboxError(`credential helper ${helperProgram(name)} get ${server}: no Username and Secret in its answer`, { code: 'EHELPER' });
  return { username: parsed.data.Username, password: parsed.data.Secret };
}

export async function helperStore(name: string, server: string, creds: Credentials): Promise<void> {
  const r = await call(name, 'store', JSON.stringify({ ServerURL: server, Username: creds.username, Secret: creds.password }));
  if (r.code !== 0) throw new NsboxError(`credential helper ${helperProgram(name)} store ${server}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`, { code: 'EHELPER' });
}

/** Erases `server`'s credentials; false when the helper had none. */
export async function helperErase(name: string, server: string): Promise<boolean> {
  const r = await call(name, 'erase', server);
  if (r.code === 0) return true;
  if (notFound(r.stdout) || notFound(r.stderr)) return false;
  throw new NsboxError(`credential helper ${helperProgram(name)} erase ${server}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`, { code: 'EHELPER' });
}
