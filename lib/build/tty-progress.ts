/**
 * BuildKit's TTY progress: a view redrawn in place (ten times a second, on each vertex's start
 * and end, and on output at most as often) under a `[+] Building 2.3s (5/7)` header, one line per vertex with its time, the last
 * few output lines of each running vertex under it, `CACHED`, `ERROR` and `CANCELED` marks, and
 * `FINISHED` at the end. A failed vertex's last output lines are printed after the view, boxed,
 * as BuildKit does. Lines are cut to the terminal's width, so the cursor arithmetic stays right.
 */
import type { BuildView } from './plain-progress.js';
import { VertexList, type Vertex } from './progress-vertices.js';

export interface TtyOut {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
}

const LOG_LINES = 6;
const ERROR_LINES = 10;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
// what a line may hold of the output: no escapes or carriage returns to move the cursor
// eslint-disable-next-line no-control-regex
const printable = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]/g, '');

export function ttyProgress(out: TtyOut, clock: () => number = Date.now): BuildView {
  let height = 0;
  let drawn = -Infinity;
  let finished = false;
  let exported: string[] = [];
  const list = new VertexList(
    {
      started: () => draw(),
      finished: () => draw(),
      // output draws too, at most at the timer's pace, so a chatty step costs no more than a quiet one
      line: () => (clock() - drawn >= 100 ? draw() : undefined),
      warning: (m) => {
        // above the view: clear it, print, draw it again below
        out.write(`${up()}\x1b[J${m}\n`);
        height = 0;
        draw();
      },
    },
    clock,
  );
  const timer = setInterval(() => draw(), 100);
  timer.unref();
  const up = () => (height > 0 ? `\x1b[${height}A\r` : '\r');

  function line(text: string, time: string | undefined): string {
    const width = Math.max((out.columns ?? 80) - 1, 20);
    if (time === undefined) return text.slice(0, width);
    const room = width - time.length - 1;
    const body = text.length > room ? text.slice(0, room) : text.padEnd(room);
    return `${body} ${time}`;
  }

  function vertexLines(v: Vertex, now: number): string[] {
    const mark = v.error !== undefined ? 'ERROR ' : v.canceled ? 'CANCELED ' : v.cached ? 'CACHED ' : '';
    const lines = [line(` => ${mark}${v.name}`, secs((v.finished ?? now) - v.started))];
    if (v.finished === undefined) {
      const logs = [...v.lines.map((l) => l.text), ...(v.partial ? [v.partial] : [])].slice(-LOG_LINES);
      for (const l of logs) lines.push(line(` => => # ${printable(l)}`, undefined));
    }
    if (v.name === 'exporting to image') for (const e of exported) lines.push(line(` => => ${e}`, secs(0)));
    return lines;
  }

  function draw(): void {
    const now = clock();
    const done = list.vertices.filter((v) => v.finished !== undefined).length;
    const header = `[+] Building ${secs(now - list.started)} (${done}/${list.vertices.length})${finished ? ' FINISHED' : ''}`;
    let lines = list.vertices.flatMap((v) => vertexLines(v, now));
    const rows = out.rows ?? 24;
    if (lines.length > rows - 2) lines = lines.slice(lines.length - (rows - 2));
    const all = [line(header, undefined), ...lines];
    out.write(`${up()}${all.map((l) => `\x1b[2K${l}\n`).join('')}\x1b[J`);
    height = all.length;
    drawn = now;
  }

  function stop(): void {
    clearInterval(timer);
    finished = true;
    draw();
  }

  out.write('\x1b[?25l');
  return {
    onProgress: list.onProgress,
    done(id, names) {
      exported = [`writing image ${id}`, ...names.map((n) => `naming to ${n}`)];
      list.end();
      stop();
      out.write('\x1b[?25h');
    },
    fail(error) {
      list.end(error);
      stop();
      out.write('\x1b[?25h');
      const v = list.failed;
      if (!v) return;
      const logs = v.lines.slice(-ERROR_LINES).map((l) => `${(l.at / 1000).toFixed(3)} ${printable(l.text)}\n`);
      out.write(`------\n > ${v.name}:\n${logs.join('')}------\n`);
    },
  };
}
