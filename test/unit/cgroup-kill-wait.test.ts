/** The cgroup kill's waits (lib/cgroup/kill.ts): on pidfds and inotify, not on a timer. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { exitsOf, killByFreezing, untilChanged } from '../../lib/cgroup/kill.js';

const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    // gone
    return false;
  }
};

function sleeper() {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return { child, pid: child.pid!, exited };
}

test('exitsOf: resolves when each process has exited, reaping none (a child of ours is still its own watcher\'s to reap)', async (t) => {
  const a = sleeper();
  const b = sleeper();
  t.teardown(() => [a, b].forEach((s) => s.child.kill('SIGKILL')));
  // A pid that has gone already counts as exited.
  const gone = spawn('true');
  await new Promise((r) => gone.once('exit', r));
  let done = false;
  const both = exitsOf([a.pid, b.pid, gone.pid!], 60_000).then(() => (done = true));
  a.child.kill('SIGKILL');
  t.is(await a.exited, 'SIGKILL', 'child_process still reaps it and gets its status');
  await new Promise((r) => setImmediate(r));
  t.false(done, 'one is still running');
  b.child.kill('SIGKILL');
  await both;
  t.is(await b.exited, 'SIGKILL');
  await exitsOf([], 10);
});

test('exitsOf: gives up after its time with the processes still running', async (t) => {
  const a = sleeper();
  t.teardown(() => a.child.kill('SIGKILL'));
  await exitsOf([a.pid], 20);
  t.true(alive(a.pid));
});

test('killByFreezing: each round SIGKILLs what is listed, waits for those exits, and ends when nothing is left', async (t) => {
  const procs = [sleeper(), sleeper()];
  t.teardown(() => procs.forEach((s) => s.child.kill('SIGKILL')));
  let lists = 0;
  const ops = {
    allProcs: async () => {
      lists++;
      return procs.map((s) => s.pid).filter(alive);
    },
  };
  await killByFreezing(ops, 60_000, 'test');
  t.deepEqual(await Promise.all(procs.map((s) => s.exited)), ['SIGKILL', 'SIGKILL']);
  // One round: listed, listed again to kill, then the check that finds none (no polling rounds).
  t.is(lists, 3);
});

test('untilChanged: checked at each change of the file (inotify), resolved at the first check that holds; ETIMEDOUT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-until-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'events');
  writeFileSync(file, 'populated 1\n');
  let checks = 0;
  const done = untilChanged(file, async () => (checks++, readFileSync(file, 'utf8') === 'populated 0\n'), 60_000, 'the test file');
  await new Promise((r) => setTimeout(r, 50));
  t.is(checks, 1, 'the first check, then none until a change');
  writeFileSync(file, 'populated 0\n');
  await done;
  t.true(checks >= 2);
  await t.throwsAsync(untilChanged(file, async () => false, 30, 'nothing'), { code: 'ETIMEDOUT', message: /nothing/ });
});
