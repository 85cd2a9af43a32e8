// test/ava.mjs (how test/run-suite.sh runs ava): a run that times out still names each pending
// test in its TAP output and closes with a summary, which .ci/run counts. Plain ava 7 dies in its
// TAP reporter there and prints neither.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);

test('a timed-out run: the pending test is a named `not ok`, and the TAP summary counts it', async (t) => {
  const args = ['test/ava.mjs', '--config', 'test/fixtures/ava-tap/ava.config.mjs', '--tap', '--timeout=2s'];
  const err = await t.throwsAsync(run(process.execPath, args, { timeout: 60_000 }));
  const out = (err as unknown as { stdout: string }).stdout;
  t.regex(out, /^ok 1 - ends$/m);
  t.regex(out, /^not ok 2 - never ends$/m);
  t.regex(out, /^ +message: Exited because no new tests completed within the last 2000ms of inactivity$/m);
  t.regex(out, /^# tests 2\n# pass 1\n# fail 1$/m);
  t.is((err as unknown as { code: number }).code, 1);
});
