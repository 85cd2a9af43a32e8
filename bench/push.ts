// Pushing the debian bookworm minbase image (one 51 MB gzip layer) to an empty loopback registry,
// against `skopeo copy` of the same image from an OCI layout; then a one-layer child of it (a COPY
// of a 1 MB file) to a registry that has the base, both ways. Every timed push goes to a registry
// started for it (not timed), so nothing is already there. See bench/README.md.
//
//   node --import=tsx bench/push.ts    (root; BENCH_N=5 timed runs per peer, NSBOX_REGISTRY=host:port
//                                       with the seeded debian image, default 127.0.0.1:5000)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../lib/build/index.ts';
import { Image } from '../lib/image/image.ts';
import { startRegistry, type Registry } from '../test/fixtures/registry.ts';
import { hasCommand } from './lib/has-command.ts';
import { summarize } from './lib/stats.ts';

const runs = Number(process.env.BENCH_N ?? 5);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_N must be a positive integer, not ${process.env.BENCH_N}`);
const seeded = `${process.env.NSBOX_REGISTRY || '127.0.0.1:5000'}/debian:bookworm-minbase`;
if (!hasCommand('skopeo')) throw new Error('bench/push needs skopeo (apt-get install skopeo)');

const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'nsbox-bench-push-'));
const registries = new Set<Registry>();
process.on('exit', () => rmSync(work, { recursive: true, force: true, maxRetries: 5 }));

async function withRegistry<T>(fn: (reg: Registry) => Promise<T>): Promise<T> {
  const reg = await startRegistry();
  registries.add(reg);
  try {
    return await fn(reg);
  } finally {
    await reg.stop();
    registries.delete(reg);
  }
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const skopeo = (...args: string[]) => execFileSync('skopeo', args, { stdio: ['ignore', 'ignore', 'pipe'] });

// The image in a store of its own (pulled once, not timed), and as an OCI layout for skopeo.
const root = join(work, 'store');
await Image.pull(seeded, { root });
const layout = join(work, 'oci');
skopeo('copy', '--src-tls-verify=false', `docker://${seeded}`, `oci:${layout}:debian`);
const ctx = join(work, 'child-ctx');
mkdirSync(ctx);
writeFileSync(join(ctx, 'data.bin'), randomBytes(1 << 20));
writeFileSync(join(ctx, 'Dockerfile'), `FROM ${seeded}\nCOPY data.bin /data.bin\n`);
await buildImage({ context: ctx, root, tags: ['bench-child:1'] });
// The child's layer gzipped once before timing, as any push after the first finds it.
await withRegistry(async (reg) => {
  await Image.push(`${reg.host}/child:1`, { root, image: 'bench-child:1' });
});
const childLayout = join(work, 'oci-child');
await withRegistry(async (reg) => {
  await Image.push(`${reg.host}/child:1`, { root, image: 'bench-child:1' });
  skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/child:1`, `oci:${childLayout}:child`);
});

const times: Record<string, number[]> = { nsboxFull: [], skopeoFull: [], nsboxChild: [], skopeoChild: [] };
for (let i = 0; i <= runs; i++) {
  const keep = i > 0; // the first round warms caches and is not counted
  await withRegistry(async (reg) => {
    const t0 = process.hrtime.bigint();
    await Image.push(`${reg.host}/debian:1`, { root, image: seeded });
    const full = ms(t0);
    const t1 = process.hrtime.bigint();
    await Image.push(`${reg.host}/debian:child`, { root, image: 'bench-child:1' });
    const child = ms(t1);
    if (keep) {
      times['nsboxFull']!.push(full);
      times['nsboxChild']!.push(child);
    }
  });
  // Each registry starts empty: the store must not know of repositories of registries now gone.
  rmSync(join(root, 'distribution.json'), { force: true });
  await withRegistry(async (reg) => {
    const t0 = process.hrtime.bigint();
    skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:debian`, `docker://${reg.host}/debian:1`);
    const full = ms(t0);
    const t1 = process.hrtime.bigint();
    skopeo('copy', '--dest-tls-verify=false', `oci:${childLayout}:child`, `docker://${reg.host}/debian:child`);
    const child = ms(t1);
    if (keep) {
      times['skopeoFull']!.push(full);
      times['skopeoChild']!.push(child);
    }
  });
}

const s = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summarize(v)]));
const row = (name: string, key: string) => `${name.padEnd(44)} ${s[key]!.median.toFixed(0).padStart(6)} ms  (p90 ${s[key]!.p90.toFixed(0)})`;
console.log(`push, ${runs} runs each, median (p90), one empty loopback registry per round`);
console.log(row('nsbox push debian minbase (51 MB layer)', 'nsboxFull'));
console.log(row('skopeo copy oci: -> docker:// debian', 'skopeoFull'));
console.log(row('nsbox push one-layer child (base there)', 'nsboxChild'));
console.log(row('skopeo copy one-layer child (base there)', 'skopeoChild'));
console.log(`full push: nsbox / skopeo = ${(s['nsboxFull']!.median / s['skopeoFull']!.median).toFixed(2)}x (goal <= 1.0x)`);
console.log(`child push / full push (nsbox) = ${(s['nsboxChild']!.median / s['nsboxFull']!.median).toFixed(2)}x (goal <= 0.2x)`);
