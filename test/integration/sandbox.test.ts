/** The host sandbox: no image, the host's system read-only, private /tmp, /proc and /dev. */
import { existsSync } from 'node:fs';
import { Container } from '../../lib/index.js';
import { collect, rootTest as test } from './_helpers.js';

test('host sandbox: system dirs read-only, private writable /tmp, nothing else of the host', async (t) => {
  const marker = `nsbox-sandbox-${process.pid}`;
  await using c = await Container.run({
    command: ['/bin/sh', '-c', `echo ok > /tmp/${marker} && cat /tmp/${marker}; touch /usr/x 2>/dev/null || echo usr-ro; touch /etc/x 2>/dev/null || echo etc-ro; ls /; ls /work 2>/dev/null || echo no-work; echo $$`],
  });
  const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
  t.deepEqual(status, { exitCode: 0, signal: null });
  t.true(out.startsWith('ok\nusr-ro\netc-ro\n'), out);
  t.true(out.includes('no-work'));
  t.regex(out, /\n1\n$/);
  t.false(existsSync(`/tmp/${marker}`), "the sandbox's /tmp is its own: the file it wrote is not in the host's");
  const runDir = `/run/nsbox/${c.id}`;
  t.true(existsSync(runDir));
  await c.remove();
  t.false(existsSync(runDir), 'remove() deletes the staging directory');
});
