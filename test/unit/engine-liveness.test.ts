/**
 * One liveness check for a shim: its pid names it only while that very process runs (its start
 * time as recorded, or a command line naming its bundle), not any process that has the pid now.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { processStartTime } from '../../lib/engine/process-start-time.js';
import { liveShim, sameProcess } from '../../lib/engine/shim-control.js';

function bundle(pid: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-liveness-'));
  writeFileSync(join(dir, 'shim.pid'), `${pid}\n`);
  return dir;
}

test('a shim.pid naming a live process that is no shim of this bundle is no live shim', (t) => {
  const dir = bundle(process.pid);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.is(liveShim(dir), undefined);
});

test('a recorded start time that is not the process\'s: a reused pid', async (t) => {
  const dir = bundle(process.pid);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const start = (await processStartTime(process.pid))!;
  t.true(sameProcess(process.pid, start));
  t.false(sameProcess(process.pid, start + 1));
  t.is(liveShim(dir, { kind: 'shim', pid: process.pid, bundle: dir, pidStartTime: start + 1 }), undefined);
  t.is(liveShim(dir, { kind: 'shim', pid: process.pid, bundle: dir, pidStartTime: start }), process.pid);
});

test('a process whose command line names the bundle is its shim, until it exits', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-liveness-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn('sh', ['-c', 'read x; true', '--bundle', dir], { stdio: ['pipe', 'ignore', 'ignore'] });
  await new Promise((r) => child.once('spawn', r));
  writeFileSync(join(dir, 'shim.pid'), `${child.pid}\n`);
  t.is(liveShim(dir), child.pid);
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin.end('\n');
  await exited;
  t.is(liveShim(dir), undefined);
});
