/**
 * dockerode (npm) against `nsbox serve`: pull with followProgress, create / attach / wait / start,
 * logs, exec (hijacked and not), inspect, stats, pause, events, images, remove: the calls a Node
 * program makes when it drives Docker.
 */
import { PassThrough, type Duplex } from 'node:stream';
import anyTest, { type TestFn } from 'ava';
import Docker from 'dockerode';
import { rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry } from '../fixtures/registry.js';
import { apiUnavailable, cleanup, startServe, type Serve } from './api-fixture.js';
import { until } from '../fixtures/until.js';

interface Ctx extends ImageRegistry {
  serve: Serve;
  docker: Docker;
}
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable();
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  Object.assign(t.context, await startImageRegistry(rootfs()));
  t.context.serve = await startServe();
  t.context.docker = new Docker({ socketPath: t.context.serve.socket });
});
test.after.always(async (t) => {
  await cleanup(t.context.serve);
  await t.context.stop?.();
});

const img = (t: { context: Ctx }, name = 'busybox:1') => `${t.context.reg.host}/${name}`;

/** stdout and stderr of a multiplexed stream, each as text, once it ends. */
/** stdout and stderr of a multiplexed stream once it ends; `progress` sees them as they grow. */
function demux(docker: Docker, stream: NodeJS.ReadableStream, progress?: (out: string, err: string) => void): Promise<{ out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => {
    o += d.toString();
    progress?.(o, e);
  });
  err.on('data', (d: Buffer) => {
    e += d.toString();
    progress?.(o, e);
  });
  docker.modem.demuxStream(stream, out, err);
  return new Promise((resolve) => stream.on('end', () => resolve({ out: o, err: e })));
}

rtest('pull with followProgress: docker\'s statuses, then the image is listed and inspected', async (t) => {
  const d = t.context.docker;
  for (const name of ['busybox:1', 'layered:1']) {
    const statuses: string[] = [];
    const output = await new Promise<Array<{ status?: string }>>((resolve, reject) => {
      d.pull(img(t, name), {}, (err, stream) => {
        if (err || !stream) return reject(err);
        d.modem.followProgress(stream, (e: Error | null, out: Array<{ status?: string }>) => (e ? reject(e) : resolve(out)), (ev: { status: string }) => statuses.push(ev.status));
      });
    });
    t.true(statuses.includes('Pull complete'), statuses.join(','));
    t.regex(output.at(-1)!.status!, new RegExp(`^Status: Downloaded newer image for ${img(t, name).replace(/\./g, '\\.')}$`));
  }
  const list = await d.listImages();
  t.true(list.some((i) => i.RepoTags?.includes(img(t))));
  const inspect = await d.getImage(img(t, 'layered:1')).inspect();
  t.deepEqual(inspect.Config.Entrypoint, ['/bin/cat']);
  t.is(inspect.RootFS.Layers?.length, 3);
  await d.getImage(img(t)).tag({ repo: 'tagged', tag: 'v2' });
  t.truthy((await d.listImages()).find((i) => i.RepoTags?.includes('tagged:v2')));
  t.deepEqual(await d.getImage('tagged:v2').remove(), [{ Untagged: 'tagged:v2' }]);
  const missing = await t.throwsAsync(new Promise((_, reject) => d.pull(img(t, 'nope:1'), {}, (err) => reject(err))));
  t.regex(String(missing?.message), /HTTP code 404|not found|unknown/i);
});

rtest('create, attach with stdin, wait, start: output demultiplexed, exit code; logs, inspect, remove', async (t) => {
  const d = t.context.docker;
  const c = await d.createContainer({ Image: img(t), name: 'talker', Cmd: ['sh', '-c', 'read x; echo got $x; echo to-err >&2; exit 2'], OpenStdin: true, StdinOnce: true });
  t.teardown(() => c.remove({ force: true }).catch(() => {}));
  const stream = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  const output = demux(d, stream);
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  stream.write('hello\n');
  t.deepEqual(await waited, { StatusCode: 2, Error: null });
  t.deepEqual(await output, { out: 'got hello\n', err: 'to-err\n' });
  const logs = (await c.logs({ stdout: true, stderr: true, timestamps: true })) as unknown as Buffer;
  t.regex(logs.subarray(8).toString(), /^\d{4}-\d\d-\d\dT[\d:.]+Z got hello\n/);
  t.is(logs[0], 1, 'multiplexed: a stdout frame first');
  const info = await d.getContainer('talker').inspect();
  t.like(info, { Name: '/talker', State: { Status: 'exited', ExitCode: 2, Running: false }, Config: { Tty: false, OpenStdin: true } });
  t.is((await d.getContainer(info.Id.slice(0, 8)).inspect()).Id, info.Id, 'a unique id prefix resolves');
  await c.remove();
  await t.throwsAsync(d.getContainer('talker').inspect(), { message: /No such container: talker/ });
});

rtest('attach with logs: what was printed before, then the live output; logs without stream ends at once', async (t) => {
  const d = t.context.docker;
  const c = await d.createContainer({ Image: img(t), Cmd: ['sh', '-c', 'echo early; echo early-err >&2; read x; echo late $x'], OpenStdin: true });
  t.teardown(() => c.remove({ force: true }).catch(() => {}));
  await c.start();
  await until('the early output in the log', async () => ((await c.logs({ stdout: true, stderr: true })) as unknown as Buffer).includes('early-err'));
  const only = (await c.attach({ logs: true, stream: false, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  t.deepEqual(await demux(d, only), { out: 'early\n', err: 'early-err\n' }, 'stream=0: the log, then the end');
  const stream = (await c.attach({ logs: true, stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  // stdin once the log's replay has come, so that what the container prints next is live output.
  let replayed: () => void;
  const replay = new Promise<void>((resolve) => (replayed = resolve));
  const output = demux(d, stream, (out, err) => {
    if (out.includes('early\n') && err.includes('early-err\n')) replayed();
  });
  await replay;
  stream.write('now\n');
  t.deepEqual(await output, { out: 'early\nlate now\n', err: 'early-err\n' }, 'the log once, then what came after');
});

rtest('a TTY container streams raw; resize', async (t) => {
  const d = t.context.docker;
  const c = await d.createContainer({ Image: img(t), Cmd: ['sh', '-c', 'sleep 0.5; stty size; exit 0'], Tty: true });
  t.teardown(() => c.remove({ force: true }).catch(() => {}));
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  let raw = '';
  stream.on('data', (b: Buffer) => (raw += b.toString()));
  const ended = new Promise((r) => stream.on('end', r));
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  await c.resize({ h: 33, w: 111 });
  t.is((await waited).StatusCode, 0);
  await ended;
  t.is(raw, '33 111\r\n', 'no frame headers, the pty\'s line ends');
});

rtest('exec: hijacked and plain, stdin, exit codes in inspect; stats, pause, kill', async (t) => {
  const d = t.context.docker;
  const c = await d.createContainer({ Image: img(t), Cmd: ['sleep', '100'] });
  t.teardown(() => c.remove({ force: true }).catch(() => {}));
  await c.start();
  const e1 = await c.exec({ Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 7'], AttachStdout: true, AttachStderr: true });
  const s1 = await e1.start({ hijack: true, stdin: false });
  t.deepEqual(await demux(d, s1), { out: 'out\n', err: 'err\n' });
  t.like(await e1.inspect(), { Running: false, ExitCode: 7, ProcessConfig: { entrypoint: 'sh' } });
  const e2 = await c.exec({ Cmd: ['cat'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const s2 = (await e2.start({ hijack: true, stdin: true })) as unknown as Duplex;
  const o2 = demux(d, s2);
  s2.end('fed through stdin\n');
  t.is((await o2).out, 'fed through stdin\n');
  const e3 = await c.exec({ Cmd: ['echo', 'no hijack'], AttachStdout: true });
  t.is((await demux(d, await e3.start({}))).out, 'no hijack\n');
  t.is((await e3.inspect()).ExitCode, 0);

  const stats = await c.stats({ stream: false });
  t.true(stats.memory_stats.usage! > 0, 'memory in use');
  t.true(stats.cpu_stats.cpu_usage.total_usage > 0);
  t.true(stats.cpu_stats.system_cpu_usage > stats.precpu_stats.system_cpu_usage!, 'two samples, as docker takes them');
  t.is(stats.pids_stats?.current, 1);

  await c.pause();
  t.is((await c.inspect()).State.Status, 'paused');
  await c.unpause();
  await c.kill({ signal: 'SIGKILL' });
  t.deepEqual(await c.wait(), { StatusCode: 137, Error: null });
  await t.throwsAsync(c.exec({ Cmd: ['true'] }), { message: /HTTP code 409.*is not running/ });
});

rtest('events: container lifecycle and image events as JSON lines; listContainers with filters', async (t) => {
  const d = t.context.docker;
  const events = (await d.getEvents({ filters: { type: ['container', 'image'] } })) as unknown as NodeJS.ReadableStream & { destroy(): void };
  const seen: Array<{ Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } }> = [];
  events.on('data', (b: Buffer) => {
    for (const line of b.toString().split('\n')) if (line.trim()) seen.push(JSON.parse(line));
  });
  const c = await d.createContainer({ Image: img(t), name: 'evented', Cmd: ['sleep', '100'], Labels: { role: 'probe' } });
  await c.start();
  t.deepEqual((await d.listContainers({ filters: { label: ['role=probe'] } })).map((x) => x.Names[0]), ['/evented']);
  t.deepEqual(await d.listContainers({ filters: { name: ['no-such'] } }), []);
  await c.stop({ t: 1 });
  await c.remove();
  await d.getImage(img(t)).tag({ repo: 'evented', tag: '1' });
  await until('the image tag event', () => seen.some((e) => e.Type === 'image' && e.Action === 'tag'));
  events.destroy();
  const mine = seen.filter((e) => e.Type === 'image' || e.Actor.Attributes['name'] === 'evented').map((e) => `${e.Type}:${e.Action}`);
  t.deepEqual(mine, ['container:create', 'container:start', 'container:die', 'container:stop', 'container:destroy', 'image:tag']);
});
