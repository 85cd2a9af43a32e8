/**
 * `Engine` as SDK users (and the daemon) use it: created containers, the three wait conditions,
 * attach right after start seeing the whole run, logs that follow, exec with pipes, restart on
 * the same writable layer, and removal leaving nothing. Real kernel, real registry, real shim.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cgroup, Engine, InvalidStateError, NotFoundError, NotModifiedError, ValidationError } from '../../lib/index.js';
import { processStatSync } from '../../lib/engine/process-start-time.js';
import { connectInBundle } from '../../lib/runtime/shim-attach.js';
import { collect } from './_helpers.js';
import { engineFixture } from './engine-fixture.js';

const { test, rtest, reason } = engineFixture('nsbox-engine-');

/** The store's record reads from here on (each one's promise), until the test ends or the spy is deleted. */
function recordReads(t: { teardown(fn: () => void): void }, engine: Engine): Array<Promise<unknown>> {
  const get = engine.store.get.bind(engine.store);
  const reads: Array<Promise<unknown>> = [];
  engine.store.get = (ref) => {
    const p = get(ref);
    reads.push(p);
    return p;
  };
  t.teardown(() => Reflect.deleteProperty(engine.store, 'get'));
  return reads;
}

/** `steps` (statements on `engine` and `id`) run in another process, by an Engine of its own on `root`. */
function inAnotherEngine(root: string, id: string, steps: string): void {
  const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
  const code = `import { Engine } from ${JSON.stringify(lib)};
    const engine = await Engine.open({ root: ${JSON.stringify(root)}, repair: false, owned: false });
    const id = ${JSON.stringify(id)};
    ${steps}`;
  execFileSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'inherit', 'inherit'] });
}

rtest("start tells the shim's bundle before the record says running: an attach there gets the whole run, then the --rm removal", async (t) => {
  const { engine, image, root } = t.context;
  const r = await engine.create({ options: { image, command: ['sh', '-c', 'echo early; exit 4'] }, autoRemove: true });
  const removed = engine.wait(r.id, { condition: 'removed' });
  // The removal's last step (its event) before the next test listens.
  const destroyed = new Promise<void>((resolve) => engine.on('event', (e: { action: string; id: string }) => e.action === 'destroy' && e.id === r.id && resolve()));
  let seen: { bundle: string; state: string } | undefined;
  let conn: ReturnType<Engine['attachShim']> | undefined;
  await engine.start(r.id, {
    awaitAttach: true,
    claimRemoval: true,
    onShimStarted: (bundle) => {
      seen = { bundle, state: JSON.parse(readFileSync(join(root, 'containers', r.id, 'record.json'), 'utf8')).state };
      conn = engine.attachShim(bundle);
    },
  });
  t.deepEqual(seen, { bundle: join(root, 'containers', r.id, 'shim'), state: 'created' });
  const attached = await conn!;
  t.is(await collect(attached.stdout), 'early\n');
  t.deepEqual(await removed, { exitCode: 4 });
  t.false(existsSync(join(root, 'containers', r.id)));
  await destroyed;
});

rtest('--rm: removed once its shim is done with it, while the shim still lets a client go', async (t) => {
  const { engine, image, root } = t.context;
  const r = await engine.create({ autoRemove: true, options: { image, command: ['sleep', '1000'] } });
  const started = await engine.start(r.id, { claimRemoval: true });
  const sup = started.supervisor!;
  t.is(sup.kind, 'shim');
  // A client of its events that does not close when the shim shuts its side: the shim waits for it
  // (up to 2 s) before it exits.
  const client = await connectInBundle(sup.kind === 'shim' ? sup.bundle : '', 'events');
  client.allowHalfOpen = true;
  client.pause();
  t.teardown(() => client.destroy());
  const removed = engine.wait(r.id, { condition: 'removed' });
  // The removal's last step (its event) before the next test listens.
  const destroyed = new Promise<void>((resolve) => engine.on('event', (e: { action: string; id: string }) => e.action === 'destroy' && e.id === r.id && resolve()));
  await engine.kill(r.id, 'SIGKILL');
  t.deepEqual(await removed, { exitCode: 137 });
  t.false(existsSync(join(root, 'containers', r.id)));
  const shim = processStatSync(sup.pid);
  t.true(shim !== undefined && shim.state !== 'Z', 'the shim still waits for its client to let go');
  await destroyed;
});

rtest('create, then wait next-exit, attach and start: the whole run, its exit code, then removed', async (t) => {
  const { engine, image } = t.context;
  const events: string[] = [];
  engine.on('event', (e: { action: string }) => events.push(e.action));
  const r = await engine.create({ name: 'short', options: { image, command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] } });
  t.is(r.state, 'created');
  t.is((await engine.get('short')).id, r.id);
  await t.throwsAsync(engine.attach(r.id), { instanceOf: InvalidStateError });
  const next = engine.wait(r.id, { condition: 'next-exit' });
  await engine.start(r.id, { awaitAttach: true });
  const conn = await engine.attach(r.id);
  const [out, err] = await Promise.all([collect(conn.stdout), collect(conn.stderr)]);
  t.is(out, 'out\n');
  t.is(err, 'err\n');
  t.deepEqual(await next, { exitCode: 3 });
  t.deepEqual(await engine.wait(r.id), { exitCode: 3 }, 'not-running: at once for an exited container');
  await t.throwsAsync(engine.stop(r.id), { instanceOf: NotModifiedError });
  const removed = engine.wait(r.id, { condition: 'removed' });
  await engine.remove(r.id);
  t.deepEqual(await removed, { exitCode: 3 });
  await t.throwsAsync(engine.get(r.id), { instanceOf: NotFoundError, message: `No such container: ${r.id}` });
  t.false(existsSync(join(t.context.root, 'containers', r.id)));
  t.deepEqual(events, ['create', 'start', 'destroy']);
});

(reason ? test.serial.skip : test.serial)('wait: a container killed, waited for and removed by another process between two of its reads answers with its exit code (left by the removal), for every condition', async (t) => {
  const { engine, image, root } = t.context;
  const r = await engine.create({ options: { image, command: ['sleep', '1000'] } });
  t.teardown(() => engine.remove(r.id, { force: true }).catch(() => {}));
  await engine.start(r.id);
  // Each wait's first read done (the record says running), the removal runs in another process while
  // this one's event loop is held: the waiters' next read finds no record and no exit.json.
  const reads = recordReads(t, engine);
  const waits = (['removed', 'not-running', 'next-exit'] as const).map((condition) => engine.wait(r.id, { condition }));
  await Promise.all(reads);
  await new Promise((resolve) => setImmediate(resolve));
  Reflect.deleteProperty(engine.store, 'get');
  inAnotherEngine(root, r.id, "await engine.kill(id, 'SIGKILL'); await engine.wait(id); await engine.remove(id);");
  t.false(existsSync(join(root, 'containers', r.id)));
  t.deepEqual(await Promise.all(waits), [{ exitCode: 137 }, { exitCode: 137 }, { exitCode: 137 }]);
});

(reason ? test.serial.skip : test.serial)('wait: a created container that runs, exits and is removed by another process between two of the wait\'s reads answers with the exit code the removal left, not the created one\'s 0', async (t) => {
  const { engine, image, root } = t.context;
  const r = await engine.create({ options: { image, command: ['sh', '-c', 'exit 4'] } });
  t.teardown(() => engine.remove(r.id, { force: true }).catch(() => {}));
  const reads = recordReads(t, engine);
  const waits = (['removed', 'next-exit'] as const).map((condition) => engine.wait(r.id, { condition }));
  await Promise.all(reads);
  await new Promise((resolve) => setImmediate(resolve));
  Reflect.deleteProperty(engine.store, 'get');
  // Started, waited for and removed while this process's event loop is held: the waiters' first
  // read saw it created, their next finds no record.
  inAnotherEngine(root, r.id, 'await engine.start(id); await engine.wait(id); await engine.remove(id);');
  t.false(existsSync(join(root, 'containers', r.id)));
  t.deepEqual(await Promise.all(waits), [{ exitCode: 4 }, { exitCode: 4 }]);
});

rtest("create: an address on no network of the user's (none, host, the default bridge) is refused with docker's words, nothing created", async (t) => {
  const { engine, image } = t.context;
  const before = (await engine.list({ all: true })).length;
  const networks = [{ network: 'u1', aliases: [], ipv4Address: '10.0.0.9' }];
  for (const network of [{ mode: 'none' as const, networks }, { mode: 'host' as const, networks: [{ network: 'u1', ipv6Address: 'fd00::9' }] }, { mode: 'bridge' as const, networks: [{ network: 'bridge', ipv4Address: '172.17.0.9' }] }]) {
    await t.throwsAsync(engine.create({ options: { image, command: ['true'] }, network }), { instanceOf: ValidationError, message: 'user specified IP address is supported on user defined networks only' }, network.mode);
  }
  t.is((await engine.list({ all: true })).length, before);
});

rtest('a running container: exec with pipes, logs that follow, stats, pause, restart on its layer', async (t) => {
  const { engine, image } = t.context;
  const r = await engine.create({ options: { image, command: ['sh', '-c', 'echo up; exec sleep 1000'] } });
  t.teardown(() => engine.remove(r.id, { force: true }).catch(() => {}));
  await engine.start(r.id);
  await t.throwsAsync(engine.start(r.id), { instanceOf: NotModifiedError });
  const pid = engine.pidOf(await engine.get(r.id));
  t.true(pid !== undefined && existsSync(`/proc/${pid}`));

  const proc = await engine.exec(r.id, ['sh', '-c', 'cat > /kept; echo $X; exit 4'], { env: ['X=1'] });
  proc.stdin!.end('on the layer\n');
  t.is(await collect(proc.stdout), '1\n');
  t.deepEqual(await proc.wait(), { exitCode: 4, signal: null });

  const stats = await engine.stats(r.id);
  t.true((stats.pids?.current ?? 0) >= 1);
  await engine.pause(r.id);
  t.is((await engine.get(r.id)).state, 'paused');
  await t.throwsAsync(engine.exec(r.id, ['true']), { instanceOf: InvalidStateError, message: /is paused/ });
  await engine.unpause(r.id);

  await engine.restart(r.id, { timeout: 1 });
  // As docker's logs -f: the history, then what comes, until the container stops.
  const follow = (async () => {
    const lines: string[] = [];
    for await (const e of engine.logs(r.id, { follow: true })) lines.push(e.log);
    return lines;
  })();
  const again = await engine.exec(r.id, ['cat', '/kept']);
  t.is(await collect(again.stdout), 'on the layer\n', 'restart keeps the writable layer');
  await again.wait();
  await engine.stop(r.id, { timeout: 1 });
  t.deepEqual(await follow, ['up\n', 'up\n'], 'logs -f saw both runs and ended with the container');
  t.deepEqual(await engine.wait(r.id), { exitCode: 137 }, 'sleep ignores SIGTERM: SIGKILL after the timeout');
  await t.throwsAsync(engine.kill(r.id), { instanceOf: InvalidStateError });
  await engine.remove(r.id);
});

rtest('an image in use cannot be removed; a missing image is NotFoundError with pull: never', async (t) => {
  const { engine, image } = t.context;
  const r = await engine.create({ options: { image, command: ['true'] } });
  await t.throwsAsync(engine.removeImage(image), { instanceOf: InvalidStateError, message: new RegExp(`in use by container ${r.id.slice(0, 12)}`) });
  await engine.remove(r.id);
  await t.throwsAsync(engine.create({ options: { image: `${t.context.reg.host}/nope:1`, pull: 'never', command: ['true'] } }), { instanceOf: NotFoundError, message: /No such image/ });
  t.deepEqual((await engine.prune()).containers, []);
});

rtest("watchExits: 'die' for a container that exits on its own, once", async (t) => {
  const { engine, image } = t.context;
  const stop = engine.watchExits();
  t.teardown(stop);
  const r = await engine.create({ options: { image, command: ['sh', '-c', 'sleep 0.3; exit 7'] } });
  t.teardown(() => engine.remove(r.id, { force: true }).catch(() => {}));
  const dies: Array<Record<string, string>> = [];
  const died = new Promise<void>((resolve) => {
    engine.on('event', (e: { action: string; id: string; attributes: Record<string, string> }) => {
      if (e.action === 'die' && e.id === r.id) {
        dies.push(e.attributes);
        resolve();
      }
    });
  });
  const destroyed = new Promise<void>((resolve) => {
    engine.on('event', (e: { action: string; id: string }) => {
      if (e.action === 'destroy' && e.id === r.id) resolve();
    });
  });
  await engine.start(r.id);
  await died;
  t.is(dies[0]?.exitCode, '7');
  // The monitor reads the record at each change the shim makes (state.json, exit.json, its exit);
  // once the record is gone every later read finds nothing, so a second 'die' for this exit would
  // come before the removal's 'destroy'.
  await engine.remove(r.id);
  await destroyed;
  t.is(dies.length, 1);
});

rtest('--rm: the engine that started it removes it once its shim is done; otherwise its exit command does', async (t) => {
  const { engine, image, root } = t.context;
  const destroyed: string[] = [];
  let told: () => void;
  const destroyedA = new Promise<void>((resolve) => (told = resolve));
  const on = (e: { action: string; id: string }) => {
    if (e.action !== 'destroy') return;
    destroyed.push(e.id);
    told();
  };
  engine.on('event', on);
  t.teardown(() => engine.off('event', on));
  const a = await engine.create({ autoRemove: true, options: { image, command: ['sh', '-c', 'echo bye; exit 2'] } });
  const removedA = engine.wait(a.id, { condition: 'removed' });
  await engine.start(a.id, { claimRemoval: true });
  t.deepEqual(await removedA, { exitCode: 2 });
  await destroyedA;
  t.deepEqual(destroyed, [a.id], 'removed by this engine');
  t.false(existsSync(join(root, 'containers', a.id)));
  const b = await engine.create({ autoRemove: true, options: { image, command: ['sh', '-c', 'exit 4'] } });
  const removedB = engine.wait(b.id, { condition: 'removed' });
  await engine.start(b.id);
  t.deepEqual(await removedB, { exitCode: 4 });
  t.deepEqual(destroyed, [a.id], 'removed by its exit command, in another process');
  t.false(existsSync(join(root, 'containers', b.id)));
  t.deepEqual(await engine.list({ all: true }), []);
});

rtest('--rm: a restart keeps it (docker\'s) and runs it again on its writable layer, mounted volatile twice', async (t) => {
  const { engine, image, root } = t.context;
  // Started as the API server starts it (it removes the container itself when its shim is done).
  const r = await engine.create({ autoRemove: true, options: { image, command: ['sh', '-c', 'echo x >> /runs; echo ran; exec sleep 1000'] } });
  t.teardown(() => engine.remove(r.id, { force: true }).catch(() => {}));
  const first = await engine.start(r.id, { claimRemoval: true });
  // The first run has written before the restart kills it (its start is told at its execve, before that).
  const ran = new AbortController();
  for await (const e of engine.logs(r.id, { follow: true, signal: ran.signal })) {
    if (e.log === 'ran\n') break;
  }
  ran.abort();
  const again = await engine.restart(r.id, { timeout: 0 });
  t.not(again.startedAt, first.startedAt);
  // The first run's end, as its shim's exit command tells it (`rm --auto-remove ID --run STARTED_AT`).
  await engine.autoRemove(r.id, first.startedAt);
  t.is((await engine.get(r.id)).state, 'running', 'neither the server nor the exit command removed it');
  const runs = await engine.exec(r.id, ['cat', '/runs']);
  t.is(await collect(runs.stdout), 'x\nx\n', 'both runs wrote to the one layer');
  await runs.wait();
  const removed = engine.wait(r.id, { condition: 'removed' });
  await engine.kill(r.id);
  t.deepEqual(await removed, { exitCode: 137 }, 'the second run removed when it ends');
  t.false(existsSync(join(root, 'containers', r.id)));
});

rtest('--rm whose removal fails: a wait for the removal answers with the exit code and the error, as docker\'s', async (t) => {
  const { engine, image, root } = t.context;
  // A mount in its directory makes the store refuse the removal (until it is unmounted).
  const blocked = async (claimRemoval: boolean) => {
    const r = await engine.create({ autoRemove: true, options: { image, command: ['sh', '-c', 'exit 5'] } });
    const blocker = join(root, 'containers', r.id, 'blocker');
    mkdirSync(blocker);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', blocker]);
    t.teardown(async () => {
      execFileSync('umount', [blocker]);
      await engine.remove(r.id, { force: true }).catch((e: unknown) => {
        if (!(e instanceof NotFoundError)) throw e;
      });
    });
    const removed = engine.wait(r.id, { condition: 'removed' });
    await engine.start(r.id, { claimRemoval });
    return { r, removed };
  };
  for (const claimRemoval of [true, false]) {
    const who = claimRemoval ? 'this engine' : 'the exit command';
    const { r, removed } = await blocked(claimRemoval);
    const got = await removed;
    t.is(got.exitCode, 5, who);
    t.regex(got.error ?? '', /cannot be removed while .*blocker is mounted/, who);
    const x = await engine.get(r.id);
    t.is(x.state, 'exited', `${who}: still there, exited`);
    t.regex(x.error ?? '', /blocker is mounted/, `${who}: the removal's error is the container's (docker's State.Error)`);
  }
});

rtest('prune: the stopped containers, then the empty cgroups a crash left beneath their parents (one prune for the CLI and the API)', async (t) => {
  const { engine, image } = t.context;
  const parent = `nsbox-prune-${process.pid}`;
  const r = await engine.create({ options: { image, command: ['true'], cgroupParent: parent } });
  const leftover = await Cgroup.create('leftover', { parent });
  t.teardown(() => Cgroup.prune({ parent, minAgeMs: 0, includeParent: true }));
  const dirs = Object.values(leftover.paths);
  // Older than the minimum age (a younger one may be about to get its process).
  const old = new Date(Date.now() - 60_000);
  for (const dir of dirs) utimesSync(dir, old, old);
  const { containers, cgroups } = await engine.prune();
  t.deepEqual(containers, [r.id]);
  for (const dir of dirs) {
    t.false(existsSync(dir), dir);
    t.true(cgroups.includes(dir), `${dir} is reported`);
  }
});

rtest('wait removed: resolves when another engine removes the record (inotify, not this engine\'s events)', async (t) => {
  const { engine, image, root } = t.context;
  const r = await engine.create({ options: { image, command: ['true'] } });
  const removed = engine.wait(r.id, { condition: 'removed' });
  const other = await Engine.open({ root });
  await other.remove(r.id);
  t.deepEqual(await removed, { exitCode: 0 });
});
