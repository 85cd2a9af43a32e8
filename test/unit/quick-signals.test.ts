// The quick commands' signals (lib/cli/quick/fds.ts takeSignals): taken before the process they
// are for is started, so that one which comes before it runs neither ends us (the quick exec died
// of a SIGTERM sent right after its process printed, before its handlers were on) nor is lost.
// Each case runs in a process of its own, as what a signal does to it is what is tested (killed
// with SIGKILL at its timeout, before ava's: it keeps SIGTERM for itself).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const fds = new URL('../../lib/cli/quick/fds.ts', import.meta.url).pathname;
const nativeTs = new URL('../../lib/native.ts', import.meta.url).pathname;

/** An ES module script under tsx, with takeSignals and native imported: its exit code, signal and output. */
async function node(script: string): Promise<{ code: number; signal: string | null; out: string }> {
  const prelude = `import { takeSignals } from ${JSON.stringify(fds)}; import { native } from ${JSON.stringify(nativeTs)}; import { spawn } from 'node:child_process'; import { closeSync } from 'node:fs';`;
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import=tsx', '--input-type=module', '-e', prelude + script], { timeout: 8_000, killSignal: 'SIGKILL' });
    return { code: 0, signal: null, out: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; signal: string | null; stdout: string; stderr: string };
    return { code: err.code, signal: err.signal, out: err.stdout + err.stderr };
  }
}

test('a signal that comes before the process is started is kept, and sent to it once it runs', async (t) => {
  const r = await node(`
    const signals = takeSignals();
    // (the signal's handle does not keep the loop alive; a timer does, until it is seen)
    const hold = setTimeout(() => {}, 10_000);
    const seen = new Promise((resolve) => process.once('SIGTERM', resolve));
    process.kill(process.pid, 'SIGTERM');
    await seen;
    clearTimeout(hold);
    const child = spawn('sleep', ['100'], { stdio: 'ignore' });
    child.on('exit', (code, sig) => console.log('still here; the process got', sig));
    signals.to(native.pidfdOpen(child.pid));
  `);
  t.deepEqual(r, { code: 0, signal: null, out: 'still here; the process got SIGTERM\n' });
});

test('giving up (nothing started) lets our signals go and raises again the one that came meanwhile', async (t) => {
  const r = await node(`
    const signals = takeSignals();
    // (the signal's handle does not keep the loop alive; a timer does, until it is seen)
    const hold = setTimeout(() => {}, 10_000);
    const seen = new Promise((resolve) => process.once('SIGTERM', resolve));
    process.kill(process.pid, 'SIGTERM');
    await seen;
    clearTimeout(hold);
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
      const seen = new Promise((resolve) => process.once('SIGTERM', resolve));
      process.kill(process.pid, 'SIGTERM');
      // (as the quick commands do once their process is gone: the watch's handle would keep the loop)
      seen.then(() => {
        console.log('exited; the signal was ours to keep');
        process.exit(0);
      });
    });
  `);
  t.deepEqual(r, { code: 0, signal: null, out: 'exited; the signal was ours to keep\n' });
});
