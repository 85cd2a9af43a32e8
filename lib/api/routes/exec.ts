/**
 * Exec instances: create (checks the container runs), start (hijacked, or detached), resize,
 * inspect. The process is the engine's; the instance, with its exit code for `GET /exec/{id}/json`,
 * is the daemon's, as in docker.
 */
import * as z from 'zod';
import { InvalidStateError } from '../../errors.js';
import { checkState, execFailureCode } from '../../engine/container-status.js';
import type { ContainerProcess } from '../../runtime/process.js';
import { ApiError } from '../api-error.js';
import type { ApiContext } from '../api-context.js';
import type { ExecInstance } from '../../engine/exec-instances.js';
import { jsonBody } from '../json-body.js';
import { muxFrame } from '../mux-frame.js';
import { intParam } from '../query.js';
import type { Router } from '../router.js';
import { MULTIPLEXED_STREAM, pump, RAW_STREAM } from '../stream-pump.js';

const ExecCreateSchema = z.looseObject({
  Cmd: z.array(z.string(), { error: 'No exec command specified' }).min(1, 'No exec command specified'),
  Env: z.array(z.string()).nullish(),
  WorkingDir: z.string().nullish(),
  User: z.string().nullish(),
  Tty: z.boolean().nullish(),
  AttachStdin: z.boolean().nullish(),
  AttachStdout: z.boolean().nullish(),
  AttachStderr: z.boolean().nullish(),
  Privileged: z.boolean().nullish(),
  ConsoleSize: z.array(z.number()).nullish(),
});

const ExecStartSchema = z.looseObject({
  Detach: z.boolean().nullish(),
  Tty: z.boolean().nullish(),
  ConsoleSize: z.array(z.number()).nullish(),
});

/** After the process exits, how long its streams may stay open (a background child holding them). */
const DRAIN_MS = 500;

function execJson(e: ExecInstance) {
  return {
    ID: e.id,
    Running: e.state === 'running',
    ExitCode: e.exitCode,
    ProcessConfig: { tty: e.config.tty, entrypoint: e.config.cmd[0] ?? '', arguments: e.config.cmd.slice(1), privileged: e.config.privileged, user: e.config.user ?? '' },
    OpenStdin: e.config.attachStdin,
    OpenStderr: e.config.attachStderr,
    OpenStdout: e.config.attachStdout,
    CanRemove: false,
    ContainerID: e.containerId,
    DetachKeys: '',
    Pid: e.process?.pid ?? 0,
  };
}

const sizeOf = (s: number[] | null | undefined) => {
  const [rows, cols] = s ?? [];
  return rows && cols && rows > 0 && cols > 0 ? { cols, rows } : undefined;
};

export function execRoutes(router: Router, ctx: ApiContext): void {
  const { engine, execs } = ctx;

  router.add('POST', '/containers/:id/exec', async (ex) => {
    const r = await engine.get(ex.params['id']!);
    const body = await jsonBody(ex, ExecCreateSchema, 'exec config');
    checkState('exec', r);
    const size = body.ConsoleSize?.length === 2 ? (body.ConsoleSize as [number, number]) : undefined;
    const exec = execs.create(r.id, {
      cmd: body.Cmd,
      env: (body.Env ?? []).filter((e) => /^[^=]+=/.test(e)),
      ...(body.WorkingDir ? { cwd: body.WorkingDir } : {}),
      ...(body.User ? { user: body.User } : {}),
      tty: body.Tty ?? false,
      attachStdin: body.AttachStdin ?? false,
      attachStdout: body.AttachStdout ?? false,
      attachStderr: body.AttachStderr ?? false,
      privileged: body.Privileged ?? false,
      ...(size ? { consoleSize: size } : {}),
    });
    ex.send(201, { Id: exec.id });
  });

  router.add('POST', '/exec/:id/start', async (ex) => {
    const exec = execs.get(ex.params['id']!);
    const body = await jsonBody(ex, ExecStartSchema, 'exec start config');
    if (exec.state === 'running') throw new InvalidStateError(`Exec command ${exec.id} is already running`);
    if (exec.state === 'exited') throw new InvalidStateError(`Exec command ${exec.id} has already run`);
    const tty = body.Tty ?? exec.config.tty;
    const size = sizeOf(body.ConsoleSize) ?? sizeOf(exec.config.consoleSize) ?? exec.pendingSize ?? { cols: 80, rows: 24 };
    // A container that is not running is refused before the upgrade (a 409, as for create).
    checkState('exec', await engine.get(exec.containerId));
    exec.state = 'running';
    // As docker: the client has its upgraded socket before the process starts. docker-py (and so
    // docker-compose's exec) reads the 101's headers through a buffered reader and then reads the
    // raw socket: output sent along with the headers would be lost in that buffer.
    const h = body.Detach ? undefined : await ex.hijack(tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    let proc: ContainerProcess;
    try {
      proc = await engine.exec(exec.containerId, exec.config.cmd, {
        env: exec.config.env,
        ...(exec.config.cwd ? { cwd: exec.config.cwd } : {}),
        ...(exec.config.user ? { user: exec.config.user } : {}),
        tty: tty ? size : false,
        privileged: exec.config.privileged,
      });
    } catch (err) {
      const code = execFailureCode(err);
      if (code === undefined && !h) {
        exec.state = 'created';
        throw err;
      }
      // As docker: the start succeeds, the message goes to the client's stderr, the code to inspect.
      execs.failed(exec, code ?? 126);
      if (!h) throw new ApiError(500, (err as Error).message);
      const msg = Buffer.from(code === undefined ? `${(err as Error).message}\r\n` : `nsbox: exec failed: ${(err as Error).message}\n`);
      h.output.write(tty ? msg : muxFrame(2, msg));
      h.end();
      return;
    }
    if (exec.pendingSize && tty) proc.resize(exec.pendingSize.cols, exec.pendingSize.rows);
    const exited = execs.track(exec, proc);
    if (!h) {
      proc.stdin?.end();
      proc.stdout?.resume();
      proc.stderr?.resume();
      ex.send(200);
      return;
    }
    if (exec.config.attachStdin && proc.stdin) {
      const stdin = proc.stdin;
      stdin.on('error', () => {});
      h.input.pipe(stdin);
    } else {
      proc.stdin?.end();
      h.input.resume();
    }
    // The client gone: the process goes on, as under docker (its output has nowhere to go).
    const streams = pump(h.output, [
      { stream: exec.config.attachStdout || tty ? proc.stdout : (proc.stdout?.resume(), null), id: 1 },
      { stream: exec.config.attachStderr ? proc.stderr : (proc.stderr?.resume(), null), id: 2 },
    ], !tty);
    await exited;
    await Promise.race([streams, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
    h.end();
  });

  router.add('POST', '/exec/:id/resize', async (ex) => {
    const exec = execs.get(ex.params['id']!);
    const h = intParam(ex.query, 'h');
    const w = intParam(ex.query, 'w');
    if (!h || !w || h <= 0 || w <= 0) throw new ApiError(400, 'resize needs h and w, both positive');
    if (!exec.process) exec.pendingSize = { cols: w, rows: h };
    else if (exec.config.tty && exec.state === 'running') exec.process.resize(w, h);
    ex.send(200);
  });

  router.add('GET', '/exec/:id/json', async (ex) => {
    ex.send(200, execJson(execs.get(ex.params['id']!)));
  });
}
