/**
 * `HealthMonitor`: the HEALTHCHECK of a container this process owns (the SDK's in-process
 * `Container`), with the shim's rules (cpp/shim/health.cc, docker's daemon/health.go): a probe (an
 * exec) every interval after the last one ended, the start interval while starting within the start
 * period, killed after its timeout (ExitCode -1), output cut at 4096 bytes, the last 5 results,
 * `retries` failures in a row to unhealthy (failures while starting within the start period not
 * counted), one pass to healthy. Emits 'health' with the status at each change.
 */
import { EventEmitter } from 'node:events';
import { InvalidStateError } from '../errors.js';
import type { HealthResult, HealthStatus, ShimHealth } from './bundle.js';
import type { ResolvedHealthcheck } from './health-config.js';
import type { HealthWaitOptions } from './health-wait.js';
import type { ContainerProcess } from './process.js';
import { signalNumber, type SignalName } from './signals.js';

const MAX_OUTPUT = 4096;
const MAX_LOG = 5;

/** Go's Duration String() of whole milliseconds, as docker's timeout message prints it. */
function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = ((ms % 60_000) / 1000).toString();
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

export class HealthMonitor extends EventEmitter {
  readonly #h: ResolvedHealthcheck;
  readonly #exec: (argv: string[]) => Promise<ContainerProcess>;
  #status: HealthStatus = 'starting';
  #streak = 0;
  #log: HealthResult[] = [];
  #started = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #probe: ContainerProcess | undefined;
  #stopped = false;

  constructor(h: ResolvedHealthcheck, exec: (argv: string[]) => Promise<ContainerProcess>) {
    super();
    this.#h = h;
    this.#exec = exec;
    this.#arm(h.startPeriod > 0 ? h.startInterval : h.interval);
  }

  /** docker's State.Health now. */
  get state(): ShimHealth {
    return { Status: this.#status, FailingStreak: this.#streak, Log: [...this.#log] };
  }

  /** Resolves once the status is in `until` (default ['healthy']); rejects once the container has stopped. */
  wait(opts: HealthWaitOptions = {}): Promise<ShimHealth> {
    const until = new Set<HealthStatus>(opts.until ?? ['healthy']);
    opts.signal?.throwIfAborted();
    if (until.has(this.#status) && !this.#stopped) return Promise.resolve(this.state);
    if (this.#stopped) return Promise.reject(new InvalidStateError('the container has stopped'));
    return new Promise((resolve, reject) => {
      const done = () => {
        this.off('health', onHealth);
        this.off('stop', onStop);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const onHealth = (s: HealthStatus) => {
        if (!until.has(s)) return;
        done();
        resolve(this.state);
      };
      const onStop = () => {
        done();
        reject(new InvalidStateError(`the container stopped before its health was ${[...until].join(' or ')}`));
      };
      const onAbort = () => {
        done();
        reject(opts.signal!.reason);
      };
      this.on('health', onHealth);
      this.on('stop', onStop);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The container is gone: the probe is killed, the status unhealthy (as docker leaves it). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#probe?.kill('SIGKILL');
    this.#status = 'unhealthy';
    this.emit('stop');
  }

  #arm(ms: number): void {
    // The container keeps the process alive, not its health check.
    this.#timer = setTimeout(() => void this.#run(), ms).unref();
  }

  async #run(): Promise<void> {
    const start = new Date();
    let result: { code: number; output: string };
    try {
      result = await this.#probeOnce();
    } catch (e) {
      // A probe that could not run (paused, exec refused) is a failure, as docker's probe error is.
      result = { code: -1, output: (e as Error).message };
    }
    if (this.#stopped) return;
    this.#finish({ Start: start.toISOString(), End: new Date().toISOString(), ExitCode: result.code, Output: result.output }, start.getTime());
  }

  async #probeOnce(): Promise<{ code: number; output: string }> {
    const p = await this.#exec(this.#h.argv);
    this.#probe = p;
    let out = Buffer.alloc(0);
    let truncated = false;
    const take = (d: Buffer) => {
      const keep = Math.max(0, Math.min(d.length, MAX_OUTPUT - out.length));
      if (keep) out = Buffer.concat([out, d.subarray(0, keep)]);
      if (keep < d.length) truncated = true;
    };
    p.stdout?.on('data', take);
    p.stderr?.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, this.#h.timeout);
    try {
      const exit = await p.wait();
      const output = out.toString('utf8') + (truncated ? '...' : '');
      if (timedOut) {
        const msg = `Health check exceeded timeout (${goDuration(this.#h.timeout)})`;
        return { code: -1, output: output ? `${msg}: ${output}` : msg };
      }
      return { code: exit.exitCode ?? 128 + signalNumber(exit.signal as SignalName), output };
    } finally {
      clearTimeout(timer);
      p.close();
      this.#probe = undefined;
    }
  }

  #finish(r: HealthResult, startMs: number): void {
    this.#log = [...this.#log, r].slice(-MAX_LOG);
    const old = this.#status;
    if (r.ExitCode === 0) {
      this.#streak = 0;
      this.#status = 'healthy';
    } else if (this.#status !== 'starting' || startMs - this.#started >= this.#h.startPeriod) {
      if (++this.#streak >= this.#h.retries) this.#status = 'unhealthy';
    }
    const starting = this.#status === 'starting' && Date.now() - this.#started < this.#h.startPeriod;
    this.#arm(starting ? this.#h.startInterval : this.#h.interval);
    if (old !== this.#status) this.emit('health', this.#status);
  }
}
