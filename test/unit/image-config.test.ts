/** Image config as container defaults, with docker run's precedence. */
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { commandFor, resolveUser } from '../../lib/runtime/image-config.js';
import { ValidationError } from '../../lib/errors.js';

test('Entrypoint + Cmd; a command replaces Cmd; an entrypoint replaces both', (t) => {
  const ic = { Entrypoint: ['/entry'], Cmd: ['--default'] };
  t.deepEqual(commandFor(ic, undefined, undefined), ['/entry', '--default']);
  t.deepEqual(commandFor(ic, ['--mine'], undefined), ['/entry', '--mine']);
  t.deepEqual(commandFor(ic, undefined, ['/bin/sh']), ['/bin/sh']);
  t.deepEqual(commandFor(ic, ['-c', 'x'], ['/bin/sh']), ['/bin/sh', '-c', 'x']);
  t.deepEqual(commandFor({ Cmd: ['sh'] }, undefined, undefined), ['sh']);
  t.deepEqual(commandFor({ Entrypoint: null, Cmd: null }, undefined, undefined), []);
});

test('users resolve through the topmost /etc/passwd and /etc/group', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'nsbox-ic-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const lower = join(base, 'lower');
  const upper = join(base, 'upper');
  mkdirSync(join(lower, 'etc'), { recursive: true });
  mkdirSync(join(upper, 'etc'), { recursive: true });
  writeFileSync(join(lower, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n');
  writeFileSync(join(upper, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n');
  writeFileSync(join(lower, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
  const layers = [upper, lower];
  t.deepEqual(resolveUser('app', layers), { uid: 1000, gid: 1001 });
  t.deepEqual(resolveUser('app:staff', layers), { uid: 1000, gid: 50 });
  t.deepEqual(resolveUser('1000', layers), { uid: 1000, gid: 1001 });
  t.deepEqual(resolveUser('42:7', layers), { uid: 42, gid: 7 });
  t.is(t.throws(() => resolveUser('old', layers), { instanceOf: ValidationError }).field, 'user', 'the upper passwd hides the lower one');
  t.throws(() => resolveUser('app:nogroup', layers), { instanceOf: ValidationError, message: /unable to find group nogroup/ });
});
