/**
 * The build's BuildKit-style progress views (lib/build/plain-progress.ts, tty-progress.ts) fed a
 * build's events with a clock of our own: two stages running at once, told apart by `#N`; output
 * lines timed from their vertex's start; CACHED, DONE, ERROR and CANCELED; the export's lines; the
 * TTY view's header, marks, running logs, cursor moves and width cut, and its error box.
 */
import test from 'ava';
import { plainProgress } from '../../lib/build/plain-progress.js';
import { ttyProgress } from '../../lib/build/tty-progress.js';
import type { BuildProgress } from '../../lib/build/stage-state.js';

const out = (s: string): BuildProgress => ({ type: 'output', data: Buffer.from(s), stage: 1 });

/** Stage 0 (named b) and stage 1 run at once; stage 1's RUN fails when `fail`. */
function feed(on: (e: BuildProgress) => void, tick: (ms: number) => void, fail: boolean): void {
  on({ type: 'step', step: 1, total: 5, instruction: 'FROM busybox AS b', vertex: { stage: 'b', n: 1, of: 2 }, stage: 0 });
  on({ type: 'stepDone', id: 'sha256:1', stage: 0 });
  on({ type: 'step', step: 3, total: 5, instruction: 'FROM busybox', vertex: { stage: 'stage-1', n: 1, of: 2 }, stage: 1 });
  on({ type: 'step', step: 2, total: 5, instruction: 'RUN make \\\n  all', vertex: { stage: 'b', n: 2, of: 2 }, stage: 0 });
  on({ type: 'cached', stage: 0 });
  on({ type: 'stepDone', id: 'sha256:2', stage: 0 });
  on({ type: 'stepDone', id: 'sha256:3', stage: 1 });
  on({ type: 'step', step: 4, total: 5, instruction: 'ENV A=1', stage: 1 });
  on({ type: 'stepDone', id: 'sha256:4', stage: 1 });
  on({ type: 'step', step: 5, total: 5, instruction: 'RUN echo hi', vertex: { stage: 'stage-1', n: 2, of: 2 }, stage: 1 });
  tick(250);
  on(out('hel'));
  on(out('lo\nwor'));
  tick(1000);
  if (fail) {
    on({ type: 'failed', message: "The command '/bin/sh -c echo hi' returned a non-zero code: 1", stage: 1 });
    return;
  }
  on(out('ld\n'));
  on({ type: 'stepDone', id: 'sha256:5', stage: 1 });
  on({ type: 'exporting' });
}

test('plain: BuildKit\'s #N lines', (t) => {
  let now = 1000;
  let text = '';
  const v = plainProgress((s) => (text += s), () => now);
  feed(v.onProgress, (ms) => (now += ms), false);
  now += 100;
  v.done('sha256:abc', ['docker.io/library/app:1']);
  t.is(
    text,
    [
      '#1 [b 1/2] FROM busybox AS b',
      '#1 DONE 0.0s',
      '',
      '#2 [stage-1 1/2] FROM busybox',
      '',
      '#3 [b 2/2] RUN make \\',
      '#3 CACHED',
      '#2 DONE 0.0s',
      '',
      '#4 [stage-1 2/2] RUN echo hi',
      '#4 0.250 hello',
      '#4 1.250 world',
      '#4 DONE 1.3s',
      '',
      '#5 exporting to image',
      '#5 writing image sha256:abc done',
      '#5 naming to docker.io/library/app:1 done',
      '#5 DONE 0.1s',
      '',
    ].join('\n'),
  );
});

test('plain: the failed vertex says ERROR, the other stage\'s open vertex CANCELED', (t) => {
  let now = 0;
  let text = '';
  const v = plainProgress((s) => (text += s), () => now);
  const on = v.onProgress;
  on({ type: 'step', step: 1, total: 4, instruction: 'FROM busybox', vertex: { stage: 'x', n: 1, of: 2 }, stage: 2 });
  on({ type: 'stepDone', id: 'sha256:1', stage: 2 });
  on({ type: 'step', step: 2, total: 4, instruction: 'RUN sleep 9', vertex: { stage: 'x', n: 2, of: 2 }, stage: 2 });
  feed(on, (ms) => (now += ms), true);
  v.fail(new Error('x'));
  t.regex(text, /#6 0\.250 hello\n#6 1\.250 wor\n#6 ERROR: The command '\/bin\/sh -c echo hi' returned a non-zero code: 1\n#2 CANCELED\n$/);
  t.false(text.includes('#2 DONE'));
});

test('tty: a view redrawn in place, with timings, marks, running logs and the error box', (t) => {
  let now = 0;
  let text = '';
  const v = ttyProgress({ write: (s: string) => (text += s), columns: 40, rows: 30 }, () => now);
  feed(v.onProgress, (ms) => (now += ms), true);
  // the last frame before the failure: the running RUN with its complete and partial log lines
  const frames = text.split('\x1b[2K[+] ');
  const running = frames.findLast((f) => f.includes('=> => # wor'))!;
  t.truthy(running, text);
  t.true(running.includes(`\x1b[2K${' => [stage-1 2/2] RUN echo hi'.padEnd(34)} 0.3s\n`), running);
  t.true(running.includes('\x1b[2K => => # hello\n\x1b[2K => => # wor\n'), running);
  v.fail(new Error('x'));
  const last = text.slice(text.lastIndexOf('[+] '));
  t.regex(last, /^\[\+\] Building 1\.3s \(4\/4\) FINISHED\n/);
  t.true(last.includes(`${' => CACHED [b 2/2] RUN make \\'.padEnd(34)} 0.0s\n`), last);
  t.true(last.includes(' => ERROR [stage-1 2/2] RUN echo h 1.3s\n'), last);
  t.false(last.includes('=> => #'), 'no logs under a finished vertex');
  t.true(last.endsWith('\x1b[J\x1b[?25h------\n > [stage-1 2/2] RUN echo hi:\n0.250 hello\n1.250 wor\n------\n'), JSON.stringify(last));
  // each frame goes back up over the one before: as many lines as it drew
  const moves = [...text.matchAll(/\x1b\[(\d+)A/g)].map((m) => Number(m[1]));
  const heights = text.split(/\x1b\[\d+A/).slice(0, -1).map((f) => f.slice(f.lastIndexOf('[+] ')).split('\n').length - 1);
  t.deepEqual(moves, heights);
  t.true(text.split('\n').every((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, '').length <= 39), 'cut to the width');
});
