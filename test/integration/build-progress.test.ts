/**
 * `nsbox build --progress`: `plain` prints BuildKit's `#N [stage k/n]` lines on stderr (stdout
 * empty), the RUN's output timed, the export's lines; `auto` on a terminal (a pty from script(1))
 * draws the live view, with CACHED marks on a second build and the failing step boxed; `quiet`
 * prints the id alone; an unknown mode is refused. `auto` without a terminal is docker's legacy
 * output, checked in build.test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSuite, context } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-progress-');
const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));
const DOCKERFILE = 'FROM busybox AS b\nRUN echo made > /m\nFROM busybox\nENV A=1\nCOPY --from=b /m /m\nRUN echo hi; cat /m\n';

rtest('nsbox build --progress plain|auto (on a terminal)|quiet', (t) => {
  const env = { ...process.env, NSBOX_ROOT: t.context.root };
  const dir = context(t, { Dockerfile: DOCKERFILE });
  const plain = spawnSync(process.execPath, [bin, 'build', '--progress', 'plain', '-t', 'prog:1', dir], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(plain.status, 0, plain.stderr);
  t.is(plain.stdout, '');
  const e = plain.stderr;
  t.regex(e, /^#1 \[b 1\/2\] FROM busybox AS b\n#1 DONE \d+\.\ds\n\n#2 \[b 2\/2\] RUN echo made > \/m\n#2 DONE \d+\.\ds\n/, e);
  t.regex(e, /\n#(\d+) \[stage-1 2\/3\] COPY --from=b \/m \/m\n#\1 DONE /, e);
  t.regex(e, /\n#(\d+) \[stage-1 3\/3\] RUN echo hi; cat \/m\n#\1 \d+\.\d{3} hi\n#\1 \d+\.\d{3} made\n#\1 DONE \d+\.\ds\n/, e);
  t.regex(e, /\n#6 exporting to image\n#6 writing image sha256:[0-9a-f]{64} done\n#6 naming to docker\.io\/library\/prog:1 done\n#6 DONE \d+\.\ds\n$/, e);
  t.false(e.includes('ENV'), 'metadata steps are no vertices');

  // a terminal: script(1) runs the build on a pty of its own, the view's bytes land in the log
  const log = join(t.context.dir, 'tty.log');
  const onTty = (args: string) => spawnSync('script', ['-qfec', `stty cols 100 rows 40; ${process.execPath} ${bin} build ${args}`, log], { encoding: 'utf8', env, timeout: 120_000 });
  const tty = onTty(`-t prog:1 ${dir}`);
  t.is(tty.status, 0, tty.stdout);
  const view = readFileSync(log, 'utf8');
  const last = view.slice(view.lastIndexOf('[+] Building'));
  t.regex(last, /^\[\+\] Building \d+\.\ds \(6\/6\) FINISHED\r?\n/, last);
  t.regex(last, / => CACHED \[stage-1 3\/3\] RUN echo hi; cat \/m +\d+\.\ds\r?\n/, last);
  t.regex(last, / => => naming to docker\.io\/library\/prog:1 +0\.0s\r?\n/, last);
  t.true(view.includes('\x1b[?25l') && /\x1b\[\d+A/.test(view), 'drawn in place');
  t.false(view.includes('Step 1/'), 'no legacy lines');

  const failing = context(t, { Dockerfile: 'FROM busybox\nRUN echo bad; exit 3\n' });
  const bad = onTty(failing);
  t.not(bad.status, 0);
  const failed = readFileSync(log, 'utf8');
  t.regex(failed, / => ERROR \[2\/2\] RUN echo bad; exit 3 +\d+\.\ds\r?\n/, failed);
  t.regex(failed, /------\r?\n > \[2\/2\] RUN echo bad; exit 3:\r?\n\d+\.\d{3} bad\r?\n------\r?\n/, failed);
  t.regex(failed, /returned a non-zero code: 3/);

  const quiet = spawnSync(process.execPath, [bin, 'build', '--progress', 'quiet', dir], { encoding: 'utf8', env, timeout: 120_000 });
  t.regex(quiet.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const wrong = spawnSync(process.execPath, [bin, 'build', '--progress', 'fancy', dir], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(wrong.status, 125);
  t.regex(wrong.stderr, /--progress fancy: expected auto, plain, tty or quiet/);
});
