// bench/push's two nsbox pushes (debian minbase to an empty loopback registry, then a one-layer
// child of it), for comparing checkouts in one process: each round runs every tree once, in
// alternating order, each on a registry of its own, so that the machine's drift hits them alike.
// BENCH_TRACE=1 prints the last round's child push as a timeline of its requests (node's http
// diagnostics channels) and the registry's own duration for each. See bench/README.md (push).
//
//   node --import=tsx bench/push-ab.ts    (root; the seeded 127.0.0.1:5000/debian:bookworm-minbase;
//     BENCH_TREES=/a/checkout,/b/checkout (default: this one; each with lib/ and node_modules),
//     BENCH_N=10 rounds, BENCH_TRACE=1, BENCH_WINDOWS=file: the child pushes' windows, in the
//     clock of a `node --cpu-prof` profile, to cut the child pushes' samples out of it)
import dc from 'node:diagnostics_channel';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/fixtures/registry.ts';
import { summarize } from './lib/stats.ts';

type ImageApi = typeof import('../lib/image/image.ts');
type BuildApi = typeof import('../lib/build/index.ts');

const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
const trees = (process.env.BENCH_TREES || here).split(',').map((t) => resolve(t));
const runs = Number(process.env.BENCH_N ?? 10);
const trace = process.env.BENCH_TRACE === '1';
const seeded = `${process.env.NSBOX_REGISTRY || '127.0.0.1:5000'}/debian:bookworm-minbase`;

const mods = await Promise.all(trees.map(async (tree) => ({
  tree,
  Image: ((await import(join(tree, 'lib/image/image.ts'))) as ImageApi).Image,
  buildImage: ((await import(join(tree, 'lib/build/index.ts'))) as BuildApi).buildImage,
})));

let t0 = 0n;
/** When the child push's first blob request started (ms after the push did). */
let firstBlob = NaN;
const events: string[] = [];
const since = () => (Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1).padStart(6);
const names = new WeakMap<ClientRequest, string>();
const short = (path: string) => path.replace(/sha256(:|%3A)([0-9a-f]{8})[0-9a-f]{56}/g, '$2').replace(/uploads\/[^?]+\?_state=[^&]+/, 'uploads/…').slice(0, 80);
dc.subscribe('http.client.request.start', (m) => {
  const req = (m as { request: ClientRequest }).request;
  if (Number.isNaN(firstBlob) && req.path.includes('/blobs/')) firstBlob = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!trace) return;
  names.set(req, `${req.method} ${short(req.path)}`);
  events.push(`${since()} > ${names.get(req)}`);
});
dc.subscribe('http.client.response.finish', (m) => {
  if (!trace) return;
  const { request, response } = m as { request: ClientRequest; response: IncomingMessage };
  events.push(`${since()} < ${response.statusCode} ${names.get(request)}${request.reusedSocket ? '' : ' (new connection)'}`);
});

const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'nsbox-bench-push-ab-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true, maxRetries: 5 }));
const root = join(work, 'store');
const first = mods[0]!;
await first.Image.pull(seeded, { root });
const ctx = join(work, 'child-ctx');
mkdirSync(ctx);
writeFileSync(join(ctx, 'data.bin'), randomBytes(1 << 20));
writeFileSync(join(ctx, 'Dockerfile'), `FROM ${seeded}\nCOPY data.bin /data.bin\n`);
await first.buildImage({ context: ctx, root, tags: ['bench-child:1'] });
{
  // the child's layer gzipped once, as every later push finds it
  const reg = await startRegistry();
  await first.Image.push(`${reg.host}/child:1`, { root, image: 'bench-child:1' });
  await reg.stop();
}

/** The child pushes' windows (µs of the monotonic clock, as a --cpu-prof profile's timestamps): BENCH_WINDOWS=file. */
const windows: Array<[number, number]> = [];
if (process.env.BENCH_WINDOWS) process.on('exit', () => writeFileSync(process.env.BENCH_WINDOWS!, JSON.stringify(windows)));
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const times = new Map(mods.map((m) => [m.tree, { full: [] as number[], child: [] as number[], firstBlob: [] as number[], cpu: [] as number[] }]));
for (let i = 0; i <= runs; i++) {
  for (const m of i % 2 ? mods : [...mods].reverse()) {
    // each registry starts empty: the store must not know of repositories of registries now gone
    rmSync(join(root, 'distribution.json'), { force: true });
    const reg = await startRegistry();
    try {
      let start = process.hrtime.bigint();
      await m.Image.push(`${reg.host}/debian:1`, { root, image: seeded });
      const full = ms(start);
      events.length = 0;
      const logFrom = reg.log().split('\n').length - 1;
      t0 = start = process.hrtime.bigint();
      firstBlob = NaN;
      const cpu = process.cpuUsage();
      const res = await m.Image.push(`${reg.host}/debian:child`, { root, image: 'bench-child:1' });
      const child = ms(start);
      if (i > 0) windows.push([Number(start / 1000n), Number(process.hrtime.bigint() / 1000n)]);
      if (trace && i === runs) console.log(`child: manifest ${short(res.manifest)}, layers ${res.layers.map((l) => `${short(l.digest)} ${l.how}`).join(', ')}`);
      const used = process.cpuUsage(cpu);
      if (i > 0) {
        times.get(m.tree)!.full.push(full);
        times.get(m.tree)!.child.push(child);
        times.get(m.tree)!.firstBlob.push(firstBlob);
        times.get(m.tree)!.cpu.push((used.user + used.system) / 1000);
      }
      if (trace && i === runs) {
        console.log(`--- ${m.tree}: child push ${child.toFixed(1)} ms, this process's CPU ${((used.user + used.system) / 1000).toFixed(1)} ms`);
        console.log(events.join('\n'));
        console.log('the registry\'s durations:');
        for (const l of reg.log().split('\n').slice(logFrom)) {
          const method = /http\.request\.method=(\S+)/.exec(l)?.[1];
          const took = /http\.response\.duration=(\S+)/.exec(l)?.[1];
          if (method && took) console.log(`  ${method} ${short(/http\.request\.uri="?([^" ]+)/.exec(l)?.[1] ?? '')} ${took}`);
        }
      }
    } finally {
      await reg.stop();
    }
  }
}
console.log(`push A/B, ${runs} rounds, medians; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
for (const [tree, t] of times) {
  const full = summarize(t.full).median;
  const child = summarize(t.child).median;
  console.log(`${tree}: full ${full.toFixed(0)} ms, child ${child.toFixed(0)} ms, child / full ${(child / full).toFixed(3)}; child: first blob request at ${summarize(t.firstBlob).median.toFixed(1)} ms, CPU ${summarize(t.cpu).median.toFixed(1)} ms`);
}
