/**
 * What a readiness wait needs of a container, whoever runs it: an in-process SDK container
 * (sdk-target.ts) or an engine's detached one (engine-target.ts). Each strategy (one file each)
 * uses only this.
 */
export interface WaitTarget {
  /** For messages: "container 1a2b3c4d5e6f". */
  readonly name: string;
  /**
   * The output lines of the current start only, from its beginning, then live as printed; ends
   * when the output does (or `signal` aborts).
   */
  logLines(signal: AbortSignal): AsyncIterable<string>;
  /** The last `n` lines of the current start's output, for an error message. */
  logTail(n: number): Promise<string[]>;
  /** Resolves when the container has ended, with how ("exit code 1"). */
  exited(signal: AbortSignal): Promise<string>;
  /** The container's init (host pid) while it runs: its network namespace is read through /proc/PID/net. */
  pid(): number | undefined;
  /** Where the host reaches a container port: its published binding, else the container's address; undefined when the host cannot. */
  hostAddress(port: number): { host: string; port: number } | undefined;
  /** Runs `argv` in the container; resolves with its exit code. */
  exec(argv: string[], signal: AbortSignal): Promise<number>;
  /** Resolves once the container's healthcheck says healthy (absent: the target has no healthcheck to await). */
  healthy?(signal: AbortSignal): Promise<void>;
}

/** One strategy's run: `done` resolves when ready; `progress()` says how far it got, for a timeout's message. */
export interface WaitRun {
  done: Promise<void>;
  progress(): string;
}
