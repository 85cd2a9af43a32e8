/**
 * Errors dump cleanly: ava's TAP reporter (supertap) serializes a failing test's error and dumps it
 * as YAML, which throws on an undefined value, and then the run ends with no summary at all.
 */
import { deserialize, serialize } from 'node:v8';
import test from 'ava';
import * as supertap from 'supertap';
import {
  ApiError, ArchiveError, ConflictError, InvalidStateError, NetworkConflictError, NotFoundError, NotModifiedError, NsboxError, ValidationError,
  ignoreCode, ignoreNotFound, isCode, reportCleanupError,
} from '../../lib/errors.js';

const bare = () => [
  new NsboxError('boom'),
  new NsboxError('boom', { code: 'EPERM' }),
  new NotFoundError('no such thing'),
  new ValidationError('bad', 'field'),
  new InvalidStateError('not now'),
  new NotModifiedError('already'),
  new ConflictError('web', 'abc'),
  new NetworkConflictError('network with name x already exists'),
  new ArchiveError('truncated'),
  new ApiError(400, 'bad query'),
];

/** Runs `make` as the addon does: on the event loop, with no JavaScript frame on the stack. */
function frameless<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** What ava's TAP reporter writes for a test that failed with `error`. */
const tapOf = (error: Error) => supertap.test('fails', { index: 1, passed: false, error, comment: '' });

test('an error without errno, syscall or path has no such own properties', (t) => {
  for (const e of bare()) {
    t.false(Object.values(e).includes(undefined), `${e.name}: ${Object.keys(e).join(', ')}`);
    t.false('errno' in e || 'syscall' in e || 'path' in e, e.name);
  }
  const full = new NsboxError('mount x: EPERM', { code: 'EPERM', errno: 1, syscall: 'mount', path: 'x' });
  t.like(full, { code: 'EPERM', errno: 1, syscall: 'mount', path: 'x' });
});

test('an error made with no JavaScript on the stack gets one frame that names the addon', (t) => {
  const e = frameless(() => new NsboxError('execve /nope: ENOENT', { code: 'ENOENT', syscall: 'execve', path: '/nope' }));
  t.is(e.stack, 'NsboxError: execve /nope: ENOENT\n    at nsbox addon (execve)');
  const sub = frameless(() => new NotFoundError('gone'));
  t.is(sub.stack, 'NotFoundError: gone\n    at nsbox addon (ENOENT)');
  // A stack with frames is left as it is, headed by the subclass's own name.
  t.regex(new NotFoundError('gone').stack!, /^NotFoundError: gone\n {4}at /);
});

test("ava's TAP reporter dumps every error, as thrown and as its worker's structured clone", (t) => {
  for (const e of [...bare(), ...frameless(bare)]) {
    for (const error of [e, deserialize(serialize(e)) as Error]) {
      let out = '';
      t.notThrows(() => (out = tapOf(error)), `${e.name}: ${e.stack}`);
      t.regex(out, /^not ok 1 - fails\n {2}---\n[^]*\n {4}at: \S[^]*\n {2}\.\.\.$/);
    }
  }
});

test('a named case is ignored and any other error rethrown', async (t) => {
  const enoent = new NsboxError('open x: ENOENT', { code: 'ENOENT' });
  const eacces = Object.assign(new Error('open x: EACCES'), { code: 'EACCES' });
  t.true(isCode(enoent, 'ENOTDIR', 'ENOENT'));
  t.false(isCode(eacces, 'ENOENT'));
  t.false(isCode(undefined, 'ENOENT'));
  t.is(await Promise.reject(enoent).catch(ignoreCode('ENOENT')), undefined);
  t.is(await t.throwsAsync(Promise.reject(eacces).catch(ignoreCode('ENOENT'))), eacces);
  t.is(await Promise.reject(new NotFoundError('gone')).catch(ignoreNotFound), undefined);
  // ENOENT as a code is no NotFoundError: the class names the case, not the code.
  t.is(await t.throwsAsync(Promise.reject(enoent).catch(ignoreNotFound)), enoent);
});

test('a cleanup that fails is reported as a warning, one whose object is already gone is not', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const report = reportCleanupError('removing x');
  report(Object.assign(new Error('unlink x: ENOENT'), { code: 'ENOENT' }));
  report(Object.assign(new Error('kill 1: ESRCH'), { code: 'ESRCH' }));
  report(Object.assign(new Error('unlink x: EBUSY'), { code: 'EBUSY' }));
  // process.emitWarning emits on the next tick
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.deepEqual(warnings.map((w) => [w.message, (w as NodeJS.ErrnoException).code]), [['removing x: unlink x: EBUSY', 'NSBOX_CLEANUP']]);
});
