import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { ContainerRecordSchema, ContainerStore } from '../../lib/engine/index.js';
import { seededRandom } from '../fixtures/seeded-random.js';

const engine = fileURLToPath(new URL('../../lib/engine/index.ts', import.meta.url));

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsbox-engine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A second node process running `body` (with `store` open on `root`); its stdout as lines. */
function child(t: { teardown(fn: () => void): void }, root: string, body: string) {
  const code = `
    import { ContainerStore } from ${JSON.stringify(engine)};
    const store = new ContainerStore({ root: ${JSON.stringify(root)} });
    ${body}`;
  const proc: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code]);
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error(`child ended early: ${(await exited).stderr}`);
    return r.value;
  };
  return { proc, next, exited };
}

test('two processes racing to create the same name: exactly one wins each round, the other gets a Conflict', async (t) => {
  const root = tempRoot(t);
  await ContainerStore.open({ root });
  const rounds = 40;
  // Each round starts when the parent says so, in both children at once.
  const body = `
    console.log('ready');
    for await (const line of (await import('node:readline')).createInterface({ input: process.stdin })) {
      try {
        const r = await store.create({ name: 'race-' + line });
        console.log(JSON.stringify({ id: r.id }));
      } catch (err) {
        console.log(JSON.stringify({ error: err.name, message: err.message, holder: err.containerId }));
      }
    }`;
  const a = child(t, root, body);
  const b = child(t, root, body);
  t.is(await a.next(), 'ready');
  t.is(await b.next(), 'ready');
  const winners = new Map<string, string>();
  for (let i = 0; i < rounds; i++) {
    a.proc.stdin.write(`${i}\n`);
    b.proc.stdin.write(`${i}\n`);
    const results = [JSON.parse(await a.next()), JSON.parse(await b.next())];
    const won = results.filter((r) => r.id);
    const lost = results.filter((r) => r.error);
    t.is(won.length, 1, `round ${i}: ${JSON.stringify(results)}`);
    t.is(lost.length, 1);
    t.is(lost[0].error, 'ConflictError');
    t.is(lost[0].holder, won[0].id);
    t.is(
      lost[0].message,
      `Conflict. The container name "/race-${i}" is already in use by container "${won[0].id}". You have to remove (or rename) that container to be able to reuse that name.`,
    );
    winners.set(`race-${i}`, won[0].id);
  }
  a.proc.stdin.end();
  b.proc.stdin.end();
  t.like(await a.exited, { code: 0 });
  t.like(await b.exited, { code: 0 });

  const store = new ContainerStore({ root });
  const all = await store.list({ all: true });
  t.is(all.length, rounds);
  for (const [name, id] of winners) t.is((await store.get(name)).id, id);
  t.deepEqual(JSON.parse(readFileSync(store.namesFile, 'utf8')).names, Object.fromEntries(winners));
});

test('updates from two processes at once lose nothing: read-modify-write happens under the lock', async (t) => {
  const root = tempRoot(t);
  const store = await ContainerStore.open({ root });
  const rec = await store.create({ name: 'counter' });
  const per = 60;
  const body = `
    console.log('ready');
    process.stdin.once('data', async () => {
      for (let i = 0; i < ${per}; i++) {
        await store.update('counter', async (r) => {
          await new Promise((res) => setImmediate(res)); // widen the window between read and write
          r.restartCount++;
        });
      }
      console.log('done');
      process.exit(0);
    });`;
  const a = child(t, root, body);
  const b = child(t, root, body);
  t.is(await a.next(), 'ready');
  t.is(await b.next(), 'ready');
  a.proc.stdin.write('go\n');
  b.proc.stdin.write('go\n');
  t.is(await a.next(), 'done');
  t.is(await b.next(), 'done');
  t.is((await store.get(rec.id)).restartCount, 2 * per);
});

test('kill -9 of a process in the middle of updates (or creates) leaves whole records and a usable store', async (t) => {
  const root = tempRoot(t);
  const store = await ContainerStore.open({ root });
  const rec = await store.create({ name: 'busy', command: ['a'] });
  // Large records make each write long, so the kill often lands inside one. Each version is
  // internally consistent: the command is one letter repeated, chosen by restartCount's parity.
  const updater = `
    let n = 0;
    for (;;) {
      await store.update(${JSON.stringify(rec.id)}, (r) => {
        r.restartCount++;
        r.command = [(r.restartCount % 2 ? 'b' : 'a').repeat(200000)];
      });
      if (++n === 5) console.log('going');
    }`;
  const creator = `
    let n = 0;
    for (;;) {
      await store.create({ name: 'n' + n, command: ['x'.repeat(100000)] });
      if (++n === 5) console.log('going');
    }`;
  const random = seededRandom(t);
  let last = 0;
  for (let round = 0; round < 6; round++) {
    const c = child(t, root, round % 2 ? creator.replace(/'n' \+ n/, `'r${round}-' + n`) : updater);
    t.is(await c.next(), 'going');
    await new Promise((r) => setTimeout(r, 5 + Math.floor(random() * 40)));
    c.proc.kill('SIGKILL');
    t.like(await c.exited, { signal: 'SIGKILL' });

    // No repair yet: every record reads whole, and the lock is free again.
    const r = await store.get('busy');
    t.true(r.restartCount >= last, `restartCount ${r.restartCount} after ${last}`);
    last = r.restartCount;
    t.is(r.command[0], (r.restartCount % 2 ? 'b' : 'a').repeat(r.restartCount === 0 ? 1 : 200000));
    for (const x of await store.list({ all: true })) {
      t.deepEqual(ContainerRecordSchema.parse(JSON.parse(readFileSync(store.recordFile(x.id), 'utf8'))), x);
      t.is((await store.get(x.name)).id, x.id);
    }
  }
  t.true(last >= 15, `${last} updates`);

  // Repair leaves exactly the records, each under its own name, and no temp files.
  t.true(await store.repair());
  const dir = store.layout.containersDir;
  const all = await store.list({ all: true });
  const names = JSON.parse(readFileSync(store.namesFile, 'utf8')).names;
  t.deepEqual(names, Object.fromEntries(all.map((x) => [x.name, x.id])));
  t.deepEqual(readdirSync(dir).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort(), all.map((x) => x.id).sort());
  for (const id of all.map((x) => x.id)) t.deepEqual(readdirSync(path.join(dir, id)), ['record.json']);
  t.false(readdirSync(dir).some((f) => f.includes('.tmp-')));
  t.is((await store.update('busy', (x) => void x.restartCount++)).restartCount, last + 1);
});
