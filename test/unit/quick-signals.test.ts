// The quick commands' signals (lib/cli/quick/fds.ts takeSignals): taken before the process they
// are for is started, so that one which comes before it runs neither ends us (the quick exec died
// of a SIGTERM sent right after its process printed, before its handlers were on) nor is lost.
// Each case runs in a process of its own, as what a signal does to it is what is tested (killed
// with SIGKILL at its timeout, before ava's: it keeps SIGTERM for itself).
import test from 'ava';
import { nodeScript, type NodeScriptResult } from '../fixtures/node-script.ts';

const fds = new URL('../../lib/cli/quick/fds.ts', import.meta.url).pathname;
const nativeTs = new URL('../../lib/native.ts', import.meta.url).pathname;

/**
 * An ES module script under tsx, with takeSignals and native imported, and `selfTerm()`: a SIGTERM
 * to this process, resolved once a handler of its own saw it (a timer keeps the loop alive until
 * then, as a signal's handle does not). Its exit code, signal and output.
 */
function node(script: string): Promise<NodeScriptResult> {
  const prelude = `import { takeSignals } from ${JSON.stringify(fds)}; import { native } from ${JSON.stringify(nativeTs)}; import { spawn } from 'node:child_process'; import { closeSync } from 'node:fs';
    const selfTerm = () => new Promise((resolve) => {
      const hold = setTimeout(() => {}, 10_000);
      process.once('SIGTERM', () => resolve(clearTimeout(hold)));
      process.kill(process.pid, 'SIGTERM');
    });`;
  return nodeScript(['--import=tsx', '--input-type=module', '-e', prelude + script], { timeoutMs: 8_000, killSignal: 'SIGKILL' });
}

test('a signal that comes before the process is started is kept, and sent to it once it runs', async (t) => {
  const r = await node(`
    const signals = takeSignals();
    await selfTerm();
    const child = spawn('sleep', ['100'], { stdio: 'ignore' });
    child.on('exit', (code, sig) => console.log('still here; the process got', sig));
    signals.to(native.pidfdOpen(child.pid));
  `);
  t.deepEqual(r, { code: 0, signal: null, out: 'still here; the process got SIGTERM\n' });
});

test('giving up (nothing started) lets our signals go and raises again the one that came meanwhile', async (t) => {
  const r = await node(`
    const signals = takeSignals();
    await selfTerm();
    console.log('kept');
    signals.giveUp();
    setTimeout(() => console.log('not ended'), 5_000);
  `);
  t.is(r.signal, 'SIGTERM');
  t.is(r.out, 'kept\n');
});

test('once the process has exited, a signal is no longer sent to its (closed) pidfd', async (t) => {
  const r = await node(`
    const signals = takeSignals();
    const child = spawn('sleep', ['0.1'], { stdio: 'ignore' });
    const pidfd = native.pidfdOpen(child.pid);
    signals.to(pidfd);
    native.watchExit(pidfd, () => {
      signals.exited();
      closeSync(pidfd);
      // (then an exit, as the quick commands do once their process is gone: the watch's handle would keep the loop)
      void selfTerm().then(() => {
        console.log('exited; the signal was ours to keep');
        process.exit(0);
      });
    });
  `);
  t.deepEqual(r, { code: 0, signal: null, out: 'exited; the signal was ours to keep\n' });
});
