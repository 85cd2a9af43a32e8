/**
 * The build's progress as docker's legacy builder prints it (what `docker build` shows without
 * BuildKit, and what the Engine API's /build streams): `Step 2/7 : RUN …`, ` ---> Using cache`,
 * ` ---> Running in <id>`, the step's output, ` ---> <id>`. Shared by the CLI and the API.
 */
import type { BuildProgress } from './stage-state.js';

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/** A progress handler that writes docker's lines through `write`; `quiet` drops all but warnings. */
export function legacyProgress(write: (text: string) => void, quiet = false): (e: BuildProgress) => void {
  let midLine = false;
  const line = (s: string) => {
    if (midLine) write('\n');
    midLine = false;
    write(`${s}\n`);
  };
  return (e) => {
    if (quiet && e.type !== 'warning') return;
    switch (e.type) {
      case 'step':
        line(`Step ${e.step}/${e.total} : ${e.instruction}`);
        break;
      case 'cached':
        line(' ---> Using cache');
        break;
      case 'running':
        line(` ---> Running in ${short(e.container)}`);
        break;
      case 'output': {
        const text = e.data.toString('utf8');
        write(text);
        midLine = !text.endsWith('\n');
        break;
      }
      case 'removed':
        line(`Removing intermediate container ${short(e.container)}`);
        break;
      case 'stepDone':
        line(` ---> ${short(e.id)}`);
        break;
      case 'warning':
        line(e.message);
        break;
    }
  };
}

export { short as shortBuildId };
