/**
 * `ExecInstances`: docker's exec instances, which live in the daemon (create, then start, then
 * inspect for the exit code). Kept in memory, as docker keeps them, until their container is
 * destroyed or, once ended, for an hour.
 */
import { randomBytes } from 'node:crypto';
import { NotFoundError } from '../errors.js';
import type { ContainerProcess } from '../runtime/process.js';
import { exitCodeOf } from './container-status.js';

export interface ExecConfig {
  cmd: string[];
  env: string[];
  cwd?: string;
  user?: string;
  tty: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  privileged: boolean;
  /** [rows, cols], from the body (API ≥ 1.42 clients send it). */
  consoleSize?: [number, number];
}

export interface ExecInstance {
  readonly id: string;
  readonly containerId: string;
  readonly config: ExecConfig;
  state: 'created' | 'running' | 'exited';
  process?: ContainerProcess;
  exitCode: number | null;
  endedAt?: number;
  /** A resize that came before the process existed: applied when it starts. */
  pendingSize?: { cols: number; rows: number };
}

const KEEP_ENDED_MS = 60 * 60 * 1000;

export class ExecInstances {
  readonly #execs = new Map<string, ExecInstance>();

  create(containerId: string, config: ExecConfig): ExecInstance {
    this.#sweep();
    const exec: ExecInstance = { id: randomBytes(32).toString('hex'), containerId, config, state: 'created', exitCode: null };
    this.#execs.set(exec.id, exec);
    return exec;
  }

  /** By full id or unique prefix; NotFoundError in docker's words otherwise. */
  get(ref: string): ExecInstance {
    const exact = this.#execs.get(ref);
    if (exact) return exact;
    const hits = [...this.#execs.values()].filter((e) => e.id.startsWith(ref));
    if (hits.length === 1 && ref.length > 0) return hits[0]!;
    throw new NotFoundError(`No such exec instance: ${ref}`);
  }

  /** Records the process's exit code once it is reaped (before its streams close, so inspect has it). */
  track(e: ExecInstance, proc: ContainerProcess): Promise<void> {
    e.process = proc;
    e.state = 'running';
    return proc.wait().then(
      (s) => {
        e.exitCode = exitCodeOf(s);
      },
      () => {
        // No status to be had (the wait itself failed): docker's code for an exec it lost.
        e.exitCode = 128;
      },
    ).finally(() => {
      e.state = 'exited';
      e.endedAt = Date.now();
    });
  }

  /** An instance that could not start: the code is docker's (126/127) and start answers anyway. */
  failed(e: ExecInstance, code: number): void {
    e.state = 'exited';
    e.exitCode = code;
    e.endedAt = Date.now();
  }

  ofContainer(containerId: string): ExecInstance[] {
    return [...this.#execs.values()].filter((e) => e.containerId === containerId);
  }

  /** Forgets the execs of a destroyed container. */
  dropContainer(containerId: string): void {
    for (const e of this.ofContainer(containerId)) this.#execs.delete(e.id);
  }

  #sweep(now = Date.now()): void {
    for (const [id, e] of this.#execs) if (e.endedAt !== undefined && now - e.endedAt > KEEP_ENDED_MS) this.#execs.delete(id);
  }
}
