/**
 * The container endpoints that stream: attach (a hijacked connection), wait (headers at once, the
 * body at exit), logs, and stats.
 */
import { once } from 'node:events';
import { isRunning } from '../../engine/container-status.js';
import type { EngineEvent } from '../../engine/engine.js';
import type { ContainerRecord } from '../../engine/records.js';
import type { AttachConnection } from '../../runtime/shim.js';
import { InvalidStateError, NotFoundError } from '../../errors.js';
import { isCode } from '../../storage/errors.js';
import { ApiError } from '../api-error.js';
import type { ApiContext } from '../api-context.js';
import { muxFrame } from '../mux-frame.js';
import { boolParam, intParam, timeParam } from '../query.js';
import type { Router } from '../router.js';
import { statsJson, systemCpuNs, type StatsSample } from '../stats-json.js';
import { interfaceStats } from '../../network/interface-stats.js';
import { MULTIPLEXED_STREAM, pump, RAW_STREAM } from '../stream-pump.js';

export const isTty = (r: ContainerRecord) => r.options.tty !== undefined && r.options.tty !== false;
const WAIT_CONDITIONS = ['not-running', 'next-exit', 'removed'] as const;

/**
 * Resolves on the container's next start: with its shim's bundle when this server started it (as
 * soon as the shim runs it, before the record is written), else at the engine's 'start' event.
 * Rejects when it is destroyed or `signal` aborts first.
 */
function nextStart(ctx: ApiContext, id: string, signal: AbortSignal): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const onEvent = (e: EngineEvent) => {
      if (e.type !== 'container' || e.id !== id) return;
      if (e.action === 'start') done(() => resolve(undefined));
      else if (e.action === 'destroy') done(() => reject(new NotFoundError(`No such container: ${id}`)));
    };
    const onShim = (started: string, bundle: string) => {
      if (started === id) done(() => resolve(bundle));
    };
    const onAbort = () => done(() => reject(new Error('aborted')));
    const done = (then: () => void) => {
      ctx.engine.off('event', onEvent);
      ctx.shimStarts.off('started', onShim);
      signal.removeEventListener('abort', onAbort);
      then();
    };
    ctx.engine.on('event', onEvent);
    ctx.shimStarts.on('started', onShim);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function containerStreamRoutes(router: Router, ctx: ApiContext): void {
  const { engine } = ctx;

  router.add('POST', '/containers/:id/attach', async (ex) => {
    const r = await engine.get(ex.params['id']!);
    const tty = isTty(r);
    const want = { stdin: boolParam(ex.query, 'stdin'), stdout: boolParam(ex.query, 'stdout'), stderr: boolParam(ex.query, 'stderr') };
    // Not running yet (docker run attaches before it starts): the connection is taken now and
    // joined to the container at its start, whose output the shim keeps for this client.
    const streamed = !ex.query.has('stream') || boolParam(ex.query, 'stream');
    const waiting = !isRunning(r) && streamed;
    if (waiting) ctx.attachWaiters.set(r.id, (ctx.attachWaiters.get(r.id) ?? 0) + 1);
    const hijacked = await ex.hijack(tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    // logs=1: what the log holds first (dockerode's attach({logs: true})); with stream=0 only that.
    if (boolParam(ex.query, 'logs')) {
      // The shim replays its early output to the first client: taken here, since the log has it.
      if (isRunning(r)) {
        await engine.attach(r.id).then(
          (a) => a.close(),
          (e: unknown) => {
            // Exited meanwhile: no shim replays anything any more.
            if (!(e instanceof InvalidStateError) && !isCode(e, 'ENOENT', 'ECONNREFUSED')) throw e;
          },
        );
      }
      for await (const e of engine.logs(r.id, { follow: false })) {
        if ((e.stream === 'stdout' && !want.stdout) || (e.stream === 'stderr' && !want.stderr)) continue;
        const line = Buffer.from(e.log);
        hijacked.output.write(tty ? line : muxFrame(e.stream === 'stderr' ? 2 : 1, line));
      }
    }
    if (!streamed) {
      hijacked.end();
      return;
    }
    let attached: AttachConnection;
    try {
      const bundle = waiting ? await nextStart(ctx, r.id, ex.signal) : undefined;
      attached = bundle ? await engine.attachShim(bundle) : await engine.attach(r.id);
    } catch (err) {
      // The client left, or the container was removed (NotFoundError) or exited before it could be
      // attached (InvalidStateError; its shim's socket gone: ENOENT, ECONNREFUSED): the stream ends.
      if (!ex.signal.aborted && !(err instanceof NotFoundError) && !(err instanceof InvalidStateError) && !isCode(err, 'ENOENT', 'ECONNREFUSED')) throw err;
      hijacked.end();
      return;
    } finally {
      if (waiting) {
        const n = (ctx.attachWaiters.get(r.id) ?? 1) - 1;
        if (n > 0) ctx.attachWaiters.set(r.id, n);
        else ctx.attachWaiters.delete(r.id);
      }
    }
    if (want.stdin && r.openStdin) {
      hijacked.input.on('data', (d: Buffer) => attached.write(d));
      hijacked.input.once('end', () => attached.closeStdin());
    } else {
      hijacked.input.resume();
    }
    ex.signal.addEventListener('abort', () => attached.close(), { once: true });
    // The exit frame follows the container's last output on the shim's socket: all of it is in
    // the streams by then, and closing ends them.
    attached.once('exit', () => attached.close());
    await pump(hijacked.output, [
      { stream: want.stdout ? attached.stdout : (attached.stdout.resume(), null), id: 1 },
      { stream: want.stderr ? attached.stderr : (attached.stderr.resume(), null), id: 2 },
    ], !tty);
    if (!want.stdout && !want.stderr) await once(attached, 'close');
    hijacked.end();
  });

  router.add('POST', '/containers/:id/wait', async (ex) => {
    const condition = ex.query.get('condition') || 'not-running';
    if (!(WAIT_CONDITIONS as readonly string[]).includes(condition)) throw new ApiError(400, `invalid condition: "${condition}"`);
    const id = (await engine.get(ex.params['id']!)).id;
    const result = engine.wait(id, { condition: condition as (typeof WAIT_CONDITIONS)[number], signal: ex.signal });
    // The Go client blocks in ContainerWait until the headers come, and docker run sends start
    // only after that: headers now, the body at exit.
    const out = ex.stream(200, 'application/json');
    let body: { StatusCode: number; Error: { Message: string } | null };
    try {
      const { exitCode, error } = await result;
      body = { StatusCode: exitCode, Error: error ? { Message: error } : null };
    } catch (err) {
      // A dropped connection (docker run -d drops it) is the client giving up, not an exit.
      if (ex.signal.aborted) return;
      // Anything else is the server's failure: logged by the server, the connection dropped (the headers went).
      throw err;
    }
    out.end(JSON.stringify(body) + '\n');
  });

  router.add('GET', '/containers/:id/logs', async (ex) => {
    const stdout = boolParam(ex.query, 'stdout');
    const stderr = boolParam(ex.query, 'stderr');
    if (!stdout && !stderr) throw new ApiError(400, 'Bad parameters: you must choose at least one stream');
    const r = await engine.get(ex.params['id']!);
    const tty = isTty(r);
    const tailText = ex.query.get('tail');
    const tail = tailText === null || tailText === '' || tailText === 'all' ? undefined : intParam(ex.query, 'tail');
    const since = timeParam(ex.query, 'since');
    const until = timeParam(ex.query, 'until');
    const timestamps = boolParam(ex.query, 'timestamps');
    const entries = engine.logs(r.id, {
      follow: boolParam(ex.query, 'follow'),
      ...(tail !== undefined && tail >= 0 ? { tail } : {}),
      ...(since !== undefined && since > 0 ? { since } : {}),
      ...(until !== undefined && until > 0 ? { until } : {}),
      signal: ex.signal,
    });
    const out = ex.stream(200, tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    for await (const e of entries) {
      if (ex.signal.aborted) break;
      if ((e.stream === 'stdout' && !stdout) || (e.stream === 'stderr' && !stderr)) continue;
      const line = Buffer.from(timestamps ? `${e.time} ${e.log}` : e.log);
      out.write(tty ? line : muxFrame(e.stream === 'stderr' ? 2 : 1, line));
    }
    out.end();
  });

  router.add('GET', '/containers/:id/stats', async (ex) => {
    const r = await engine.get(ex.params['id']!);
    const stream = boolParam(ex.query, 'stream', true);
    const oneShot = boolParam(ex.query, 'one-shot');
    const sample = async (): Promise<StatsSample | undefined> => {
      const cgroup = await engine.stats(r.id).catch((e: unknown) => {
        // Not running (any more): docker's empty sample, and the stream ends.
        if (e instanceof InvalidStateError) return undefined;
        throw e;
      });
      if (!cgroup) return undefined;
      // host mode shares the host's interfaces: docker shows none for it
      const pid = r.network?.options.mode === 'host' || r.options.namespaces?.net === false ? undefined : engine.pidOf(await engine.get(r.id));
      const networks = pid ? interfaceStats(pid) : undefined;
      return { read: new Date().toISOString(), cgroup, systemNs: systemCpuNs(), ...(networks ? { networks } : {}) };
    };
    const empty: StatsSample = { read: '0001-01-01T00:00:00Z', cgroup: {}, systemNs: 0 };
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms).unref());
    if (!stream) {
      // docker's one sample has the one a second before as its precpu, unless one-shot.
      const first = await sample();
      if (first && !oneShot) await sleep(1000);
      const second = first && !oneShot ? await sample() : undefined;
      ex.send(200, second ? statsJson(r.id, r.name, second, first) : statsJson(r.id, r.name, first ?? empty, undefined));
      return;
    }
    const out = ex.stream(200, 'application/json');
    let pre: StatsSample | undefined;
    while (!ex.signal.aborted) {
      const now = await sample();
      out.write(JSON.stringify(statsJson(r.id, r.name, now ?? empty, pre)) + '\n');
      if (!now) break;
      pre = now;
      await sleep(1000);
    }
    out.end();
  });
}
