/** Reading the Dockerfile: a missing one is a NotFoundError in docker's words; any other failure is itself. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { buildImage } from '../../lib/build/index.js';
import { NotFoundError, NsboxError } from '../../lib/errors.js';

function dirs(t: { teardown(fn: () => void): void }) {
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-dockerfile-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const context = path.join(tmp, 'context');
  mkdirSync(context);
  return { root: path.join(tmp, 'root'), context };
}

test('a missing Dockerfile is a NotFoundError in docker words', async (t) => {
  const { root, context } = dirs(t);
  const e = await t.throwsAsync(buildImage({ root, context }), { instanceOf: NotFoundError });
  t.is(e.message, 'failed to read dockerfile: open Dockerfile: no such file or directory');
});

test('a Dockerfile that is a directory is that error, not "no such file"', async (t) => {
  const { root, context } = dirs(t);
  mkdirSync(path.join(context, 'Dockerfile'));
  const e = await t.throwsAsync(buildImage({ root, context }), { instanceOf: NsboxError });
  t.false(e instanceof NotFoundError, e.message);
  t.like(e, { code: 'EISDIR', path: path.join(context, 'Dockerfile'), message: `failed to read dockerfile ${path.join(context, 'Dockerfile')}: EISDIR` });
});
