/**
 * An engine's (detached) container as a `WaitTarget`, and `startAndWait`/`restartAndWait`: the
 * json-file log is read from where it ended before this start (its byte size then), so output of
 * an earlier start never counts (testcontainers-node's #446 counted it); new lines come by inotify
 * (fs.watch) as the shim appends them; the exit through the engine's wait.
 */
import { watch } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import type { Engine } from '../engine/engine.js';
import type { ContainerRecord } from '../engine/records.js';
import { LogEntrySchema } from '../runtime/bundle.js';
import { UnhealthyError } from './healthy.js';
import { waitFor, type WaitFor } from './wait-for.js';
import type { WaitTarget } from './target.js';

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? { size: 0 } : Promise.reject(e)))).size;
}

/** The lines logged from byte `offset` on, live until `over()` says the container is done and all is read. */
async function* logFrom(file: string, offset: number, signal: AbortSignal, over: Promise<unknown>): AsyncGenerator<string> {
  let pos = offset;
  let rest = '';
  let done = false;
  void over.then(() => (done = true), () => (done = true));
  let wake: (() => void) | undefined;
  const watcher = watch(file, { signal }, () => wake?.());
  // The watch ends with the signal; its abort error is the caller's (the wait's) to see.
  watcher.on('error', () => wake?.());
  try {
    for (;;) {
      const fh = await open(file, 'r');
      try {
        for (;;) {
          const buf = Buffer.alloc(1 << 16);
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
          const parts = (rest + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
          rest = parts.pop()!;
          for (const l of parts) if (l) yield LogEntrySchema.parse(JSON.parse(l)).log.replace(/\r?\n$/, '');
        }
      } finally {
        await fh.close();
      }
      if (done || signal.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        void over.then(() => resolve(), () => resolve());
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  } finally {
    watcher.close();
  }
}

export function engineWaitTarget(engine: Engine, r: ContainerRecord, logOffset: number): WaitTarget {
  const file = engine.logPath(r);
  const name = `container ${r.name ?? r.id.slice(0, 12)}`;
  const exited = (signal: AbortSignal) => engine.wait(r.id, { signal }).then((w) => `exit code ${w.exitCode}`);
  return {
    name,
    logLines: (signal) => logFrom(file, logOffset, signal, exited(signal)),
    logTail: async (n) => {
      const lines: string[] = [];
      const ac = new AbortController();
      ac.abort();
      for await (const l of logFrom(file, logOffset, ac.signal, Promise.resolve())) lines.push(l);
      return lines.slice(-n);
    },
    exited,
    pid: () => engine.pidOf(r),
    hostAddress: (port) => {
      const b = r.network?.state?.ports.find((p) => p.containerPort === port && p.protocol === 'tcp');
      if (b) return { host: !b.hostIp || b.hostIp === '0.0.0.0' ? '127.0.0.1' : b.hostIp, port: b.hostPort };
      const ip = r.network?.state?.endpoints[0]?.ipAddress;
      return ip ? { host: ip, port } : undefined;
    },
    healthy: async (signal) => {
      const h = await engine.waitForHealth(r.id, { until: ['healthy', 'unhealthy'], signal });
      if (h.Status === 'unhealthy') throw new UnhealthyError(name, h);
    },
    exec: async (argv) => {
      const p = await engine.exec(r.id, argv);
      p.stdout?.resume();
      p.stderr?.resume();
      const s = await p.wait();
      p.close();
      return s.exitCode ?? 128;
    },
  };
}

/** The byte size of the container's log (where the output of a start about to be made will begin). */
export function logSize(engine: Engine, r: ContainerRecord): Promise<number> {
  return sizeOf(engine.logPath(r));
}

/**
 * Where the current start's output begins in the container's log: the first line logged at or
 * after `startedAt` (the log's end when there is none yet), so a container found running — by
 * a reusing run, say — is waited on for its own start's output only.
 */
export async function startOffsetOf(engine: Engine, r: ContainerRecord): Promise<number> {
  if (r.startedAt === undefined) return 0;
  const since = Date.parse(r.startedAt);
  const text = await readFile(engine.logPath(r)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? Buffer.alloc(0) : Promise.reject(e)));
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf(0x0a, pos);
    if (end < 0) break;
    const line = text.subarray(pos, end).toString('utf8');
    if (line && Date.parse(LogEntrySchema.parse(JSON.parse(line)).time) >= since) return pos;
    pos = end + 1;
  }
  return pos;
}

/** engine.start, then the wait; only this start's output counts for a log wait. */
export async function startAndWait(engine: Engine, ref: string, spec: WaitFor): Promise<ContainerRecord> {
  const before = await engine.get(ref);
  const offset = await sizeOf(engine.logPath(before));
  const r = await engine.start(ref);
  await waitFor(engineWaitTarget(engine, r, offset), spec);
  return r;
}

/** engine.restart, then the wait; output of the starts before it never counts. */
export async function restartAndWait(engine: Engine, ref: string, spec: WaitFor, opts: { timeout?: number } = {}): Promise<ContainerRecord> {
  const before = await engine.get(ref);
  const offset = await sizeOf(engine.logPath(before));
  const r = await engine.restart(ref, opts);
  await waitFor(engineWaitTarget(engine, r, offset), spec);
  return r;
}
