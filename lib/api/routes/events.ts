/** `GET /events`: the event log from `since`, then live events until `until` or the client leaves. */
import type { ApiContext } from '../api-context.js';
import { eventMatches, type DockerEvent } from '../event-log.js';
import { filtersParam, timeParam } from '../query.js';
import type { Router } from '../router.js';

export function eventRoutes(router: Router, ctx: ApiContext): void {
  router.add('GET', '/events', async (ex) => {
    const filters = filtersParam(ex.query);
    const since = timeParam(ex.query, 'since');
    const until = timeParam(ex.query, 'until');
    const out = ex.stream(200, 'application/json');
    const send = (e: DockerEvent) => {
      if (until !== undefined && e.timeNano / 1e9 > until) return;
      if (eventMatches(e, filters)) out.write(JSON.stringify(e) + '\n');
    };
    if (since !== undefined) for (const e of ctx.events.since(since)) send(e);
    const untilMs = until === undefined ? undefined : until * 1000 - Date.now();
    if (untilMs !== undefined && untilMs <= 0) {
      out.end();
      return;
    }
    const unsubscribe = ctx.events.subscribe(send);
    await new Promise<void>((resolve) => {
      const timer = untilMs === undefined ? undefined : setTimeout(resolve, untilMs);
      ex.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    unsubscribe();
    out.end();
  });
}
