/**
 * BuildKit's plain progress (`docker build --progress=plain`): each vertex opens with
 * `#N [stage k/n] INSTRUCTION`, its output lines come as `#N <seconds since it started> <line>`,
 * and it closes with `#N CACHED`, `#N DONE 0.3s`, `#N ERROR: …` or `#N CANCELED`. Lines of stages
 * running at once interleave, told apart by their number.
 */
import { VertexList, type Vertex } from './progress-vertices.js';
import type { BuildProgress } from './stage-state.js';

export interface BuildView {
  onProgress: (e: BuildProgress) => void;
  /** The image is written: its id and the names it was tagged with (as `docker.io/library/app:1`). */
  done(id: string, names: string[]): void;
  fail(error: Error): void;
}

const secs = (ms: number) => (ms / 1000).toFixed(1);

export function plainProgress(write: (text: string) => void, clock: () => number = Date.now): BuildView {
  const close = (v: Vertex) => {
    if (v.error !== undefined) write(`#${v.id} ERROR: ${v.error}\n`);
    else if (v.canceled) write(`#${v.id} CANCELED\n`);
    else if (!v.cached) write(`#${v.id} DONE ${secs(v.finished! - v.started)}s\n`);
  };
  const list = new VertexList(
    {
      started: (v) => write(`${v.id > 1 ? '\n' : ''}#${v.id} ${v.name}\n`),
      line: (v, l) => write(`#${v.id} ${(l.at / 1000).toFixed(3)} ${l.text}\n`),
      cached: (v) => write(`#${v.id} CACHED\n`),
      // the export's vertex closes in done(), after its own lines
      finished: (v) => (v.name === 'exporting to image' && v.error === undefined && !v.canceled ? undefined : close(v)),
      warning: (m) => write(`${m}\n`),
    },
    clock,
  );
  return {
    onProgress: list.onProgress,
    done(id, names) {
      const exp = list.vertices.find((v) => v.name === 'exporting to image');
      list.end();
      if (!exp) return;
      write(`#${exp.id} writing image ${id} done\n`);
      for (const n of names) write(`#${exp.id} naming to ${n} done\n`);
      close(exp);
    },
    fail(error) {
      list.end(error);
    },
  };
}
