/** An in-process SDK container as a `WaitTarget`: its output log, pidfd exit, published ports and exec. */
import type { OutputLog } from '../container-logs.js';
import type { ExitStatus } from '../runtime/process.js';
import type { ContainerProcess } from '../runtime/process.js';
import type { HealthStatus, ShimHealth } from '../runtime/bundle.js';
import { ValidationError } from '../errors.js';
import { UnhealthyError } from './healthy.js';
import type { WaitTarget } from './target.js';

/** What the target needs of the SDK's Container (kept structural: lib/container.ts imports this file). */
export interface SdkContainerLike {
  readonly id: string;
  readonly pid: number | undefined;
  readonly state: string;
  wait(): Promise<ExitStatus>;
  exec(argv: string[], options: { stdio: 'ignore' }): Promise<ContainerProcess>;
  ports(containerPort: number): Array<{ host: string; port: number }>;
  port(containerPort: number): { host: string; port: number };
  ipAddress(): string | undefined;
  health(): ShimHealth | undefined;
  waitForHealth(opts: { until?: HealthStatus[]; signal?: AbortSignal }): Promise<ShimHealth>;
}

export const exitText = (s: ExitStatus): string => (s.signal ? `killed by ${s.signal}` : `exit code ${s.exitCode}`);

/** The host's way to a container port: a published binding (0.0.0.0 as 127.0.0.1), else the container's address. */
export function hostAddressOf(c: Pick<SdkContainerLike, 'port' | 'ports' | 'ipAddress'>, port: number): { host: string; port: number } | undefined {
  if (c.ports(port).length) return c.port(port);
  const ip = c.ipAddress();
  return ip ? { host: ip, port } : undefined;
}

export function sdkWaitTarget(c: SdkContainerLike, log: OutputLog | undefined): WaitTarget {
  const name = `container ${c.id.slice(0, 12)}`;
  return {
    name,
    healthy: async (signal: AbortSignal) => {
      if (c.health() === undefined) throw new ValidationError(`waitFor healthy: ${name} has no healthcheck (give it one: the image's HEALTHCHECK or the healthcheck option)`, 'waitFor');
      const h = await c.waitForHealth({ until: ['healthy', 'unhealthy'], signal });
      if (h.Status === 'unhealthy') throw new UnhealthyError(name, h);
    },
    async *logLines(signal) {
      if (log) yield* log.lines(signal);
    },
    logTail: async (n) => log?.tail(n) ?? [],
    exited: (signal) =>
      new Promise((resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        c.wait().then((s) => resolve(exitText(s)), reject);
      }),
    pid: () => (c.state === 'running' ? c.pid : undefined),
    hostAddress: (port) => hostAddressOf(c, port),
    exec: async (argv) => {
      const p = await c.exec(argv, { stdio: 'ignore' });
      const s = await p.wait();
      p.close();
      return s.exitCode ?? 128;
    },
  };
}
