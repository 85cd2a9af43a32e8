// native.watchExit's callback at the edges of the process's life: an unref'd watch whose child ends
// as the process exits (seen in the teardown, when no JavaScript runs any more), and a callback that
// throws. Each runs in a process of its own, as its exit is what is tested.
import test from 'ava';
import { nodeScript, type NodeScriptResult } from '../fixtures/node-script.ts';

const addon = new URL('../../build/Release/nsbox.node', import.meta.url).pathname;

/** node -e SCRIPT with the addon as `native`: its exit code, signal and output. */
function node(script: string): Promise<NodeScriptResult> {
  const prelude = `const native = require(${JSON.stringify(addon)}); const { spawn } = require('node:child_process'); const { readFileSync } = require('node:fs');`;
  return nodeScript(['-e', prelude + script]);
}

test('an unref\'d watch whose child ends as the process exits: a clean exit, no abort in the teardown', async (t) => {
  // The child is killed in the exit handler and left a zombie, so its pidfd is readable in the
  // teardown's turns of the loop (this aborted with "FATAL ERROR: … napi_throw" before).
  const r = await node(`
    const child = spawn('sleep', ['100'], { stdio: 'ignore', detached: true });
    child.unref();
    native.watchExit(native.pidfdOpen(child.pid), () => console.log('not called'), { unref: true });
    process.on('exit', () => {
      process.kill(child.pid, 'SIGKILL');
      while (!/\\) Z /.test(readFileSync('/proc/' + child.pid + '/stat', 'utf8'))) {}
    });`);
  t.is(r.signal, null, r.out);
  t.is(r.code, 0, r.out);
  t.false(r.out.includes('FATAL'), r.out);
});

test('a watch callback that throws: the process\'s uncaughtException, as for Node\'s own callbacks', async (t) => {
  const r = await node(`
    const child = spawn('true', [], { stdio: 'ignore', detached: true });
    child.unref();
    process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); process.exitCode = 7; });
    native.watchExit(native.pidfdOpen(child.pid), (res) => { console.log('exitCode ' + res.exitCode); throw new Error('from the callback'); });`);
  t.is(r.code, 7, r.out);
  t.regex(r.out, /exitCode 0\nuncaught: from the callback/);
});

test('watchClose: called back at each close of the file by anyone, until unwatched; a callback that throws is the process\'s uncaughtException; a watch left open does not keep the process from ending once unwatched', async (t) => {
  const r = await node(`
    const fs = require('node:fs');
    const file = require('node:path').join(require('node:os').tmpdir(), 'nsbox-close-watch-' + process.pid);
    fs.writeFileSync(file, '');
    process.on('exit', () => fs.rmSync(file, { force: true }));
    let n = 0;
    process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); });
    const h = native.watchClose(file, () => {
      n++;
      console.log('close ' + n);
      if (n === 1) fs.closeSync(fs.openSync(file, 'r'));
      else {
        console.log('unwatched ' + native.unwatchClose(h) + ' again ' + native.unwatchClose(h));
        throw new Error('from the callback');
      }
    });
    fs.closeSync(fs.openSync(file, 'r+'));`);
  t.is(r.code, 0, r.out);
  t.is(r.out, 'close 1\nclose 2\nunwatched true again false\nuncaught: from the callback\n');
});
