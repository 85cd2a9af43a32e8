/** stdio, exit statuses, signals and terminals. */
import { Container } from '../../lib/index.js';
import { collect, rootTest as test, rootfs } from './_helpers.js';
import { until } from '../fixtures/until.js';
import { once } from 'node:events';

test('stdout and stderr arrive apart; stdin is piped', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'read line; echo "out:$line"; echo "err:$line" >&2'] });
  c.stdin!.end('hello\n');
  const [out, err, status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
  t.is(out, 'out:hello\n');
  t.is(err, 'err:hello\n');
  t.deepEqual(status, { exitCode: 0, signal: null });
});

test('50 MB of output without loss', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'head -c 52428800 /dev/urandom | tee /dev/stderr | md5sum >&2'], stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  const { createHash } = await import('node:crypto');
  const hash = createHash('md5');
  c.stdout!.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  const errChunks: Buffer[] = [];
  c.stderr!.on('data', (d: Buffer) => errChunks.push(d));
  await Promise.all([new Promise((r) => c.stdout!.on('end', r)), new Promise((r) => c.stderr!.on('end', r)), c.wait()]);
  const err = Buffer.concat(errChunks);
  const data = err.subarray(0, err.length - 36);
  hash.update(data);
  t.is(data.length, 52428800);
  t.is(bytes, 0, 'tee wrote to stderr only; stdout stays empty');
  t.is(err.subarray(err.length - 36, err.length - 4).toString(), hash.digest('hex'));
});

test('50 MB on stdout, counted', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'head -c 52428800 /dev/zero'], stdio: ['ignore', 'pipe', 'ignore'] });
  let bytes = 0;
  c.stdout!.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  await Promise.all([new Promise((r) => c.stdout!.on('end', r)), c.wait()]);
  t.is(bytes, 52428800);
});

test('exit codes', async (t) => {
  for (const code of [0, 1, 42, 255]) {
    await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', `exit ${code}`], stdio: 'ignore' });
    t.deepEqual(await c.wait(), { exitCode: code, signal: null });
  }
});

test('deaths by signal are reported by name', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  c.kill('SIGKILL');
  t.deepEqual(await c.wait(), { exitCode: null, signal: 'SIGKILL' });

  await using d = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'trap "exit 3" TERM; echo trapped; while true; do sleep 0.05; done'] });
  await once(d.stdout!, 'data');
  t.deepEqual(await d.stop({ timeout: 5 }), { exitCode: 3, signal: null });
});

test('stop() escalates to SIGKILL when SIGTERM is ignored', async (t) => {
  // PID 1 ignores signals it has no handler for, so SIGTERM does nothing here.
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  t.deepEqual(await c.stop({ timeout: 0.3 }), { exitCode: null, signal: 'SIGKILL' });
  t.is(c.state, 'exited');
});

test('stdio inherit, ignore and a file descriptor', async (t) => {
  const { openSync, readFileSync, closeSync, mkdtempSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/nsbox-test-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(`${dir}/out`, 'w');
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'echo to-file; echo to-null >&2'], stdio: ['ignore', fd, 'ignore'] });
  t.is(c.stdout, null);
  await c.wait();
  closeSync(fd);
  t.is(readFileSync(`${dir}/out`, 'utf8'), 'to-file\n');
});

test('tty: a terminal with a window size that can be resized', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh'], tty: { cols: 100, rows: 30 } });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const shows = (re: RegExp) => until(`${re} in the terminal's output`, () => re.test(out));
  c.stdin!.write('test -t 0 && test -t 1 && echo IS""A""TTY; stty size; tty\n');
  await shows(/ISATTY/);
  await shows(/30 100/);
  c.resize(120, 40);
  c.stdin!.write('stty size\n');
  await shows(/40 120/);
  t.regex(out, /ISATTY[^]*30 100[^]*40 120/);
  c.stdin!.write('exit 7\n');
  t.deepEqual(await c.wait(), { exitCode: 7, signal: null });
});
