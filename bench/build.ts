// Image builds against buildah, in one run: the same contexts built by `nsbox build` and
// `buildah bud --layers` (overlay storage and chroot isolation in a temp dir), each from a busybox
// base already in its store. Contexts: (a) small: COPY of one file and three RUNs; (b) many files:
// BENCH_MB megabytes (default 200) in 2 000 files COPYed, then a RUN that deletes half; (c) three
// stages. Each timed cold (no cache), warm (nothing changed: all cached) and after one source file
// changed. Whole commands, spawn to exit. nsbox runs as users run it: the native launcher
// (build/Release/nsbox-launcher, installed as bin/nsbox) when it is built, which answers a fully
// cached build without Node and execs Node for the rest; the warm row says how many of its builds
// the launcher answered alone (a probe after each: the same build with no node on PATH).
//
//   node --import=tsx bench/build.ts        (root; BENCH_N=3 rounds, BENCH_MB=200, BENCH_CASES=small,many,stages)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hasCommand } from './lib/has-command.ts';
import { summarize } from './lib/stats.ts';

const N = Number(process.env.BENCH_N ?? 3);
const MB = Number(process.env.BENCH_MB ?? 200);
const repo = new URL('..', import.meta.url).pathname;
const bin = join(repo, 'bin', 'nsbox.js');
const launcher = join(repo, 'build', 'Release', 'nsbox-launcher');
const nsbox: [string, string[]] = existsSync(launcher) ? [launcher, []] : [process.execPath, [bin]];
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-build-'));
const env = { ...process.env, NSBOX_ROOT: join(dir, 'nsbox') };
const bh = ['--root', join(dir, 'bh-storage'), '--runroot', join(dir, 'bh-run'), '--storage-driver', 'overlay'];

function run(file: string, args: string[], input?: Buffer, extraEnv: Record<string, string> = {}): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { env: { ...env, ...extraEnv }, input: input ?? Buffer.alloc(0), stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  return ms;
}

function context(name: string, files: Record<string, string | Buffer>): string {
  const d = join(dir, name);
  for (const [f, data] of Object.entries(files)) {
    mkdirSync(join(d, f, '..'), { recursive: true });
    writeFileSync(join(d, f), data);
  }
  return d;
}

const BASE = 'localhost/busybox:bench';
const small = context('small', {
  'app.txt': 'v1\n',
  Dockerfile: `FROM ${BASE}\nCOPY app.txt /app/\nRUN echo one > /one\nRUN echo two > /two && cat /app/app.txt\nRUN ls /app > /listing\n`,
});
const manyFiles: Record<string, Buffer> = {};
const per = Math.floor((MB << 20) / 2000);
for (let i = 0; i < 2000; i++) manyFiles[`files/d${i % 20}/f${i}`] = randomBytes(per);
const many = context('many', { ...manyFiles, Dockerfile: `FROM ${BASE}\nCOPY files /files/\nRUN find /files -name 'f*[02468]' | xargs rm -f\n` });
const stages = context('stages', {
  'src/a.txt': 'a\n',
  'src/b.txt': 'b\n',
  Dockerfile: [
    `FROM ${BASE} AS one`, 'COPY src/a.txt /a.txt', 'RUN cat /a.txt > /one',
    `FROM ${BASE} AS two`, 'COPY src/b.txt /b.txt', 'RUN cat /b.txt > /two',
    `FROM ${BASE}`, 'COPY --from=one /one /one', 'COPY --from=two /two /two', 'RUN cat /one /two',
  ].join('\n'),
});
const changed: Record<string, string> = { small: join(small, 'app.txt'), many: join(many, 'files/d7/f7'), stages: join(stages, 'src/b.txt') };

const tar = execFileSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 1 << 28 });
run(process.execPath, [bin, 'import', '-', BASE], tar);
const peer = hasCommand('buildah');
if (peer) {
  const ctr = execFileSync('buildah', [...bh, 'from', 'scratch'], { encoding: 'utf8' }).trim();
  writeFileSync(join(dir, 'rootfs.tar'), tar);
  execFileSync('buildah', [...bh, 'add', ctr, join(dir, 'rootfs.tar'), '/']);
  execFileSync('buildah', [...bh, 'commit', '-q', ctr, BASE]);
  execFileSync('buildah', [...bh, 'rm', ctr]);
}

const tools = {
  nsbox: (ctx: string, noCache: boolean) => run(nsbox[0], [...nsbox[1], 'build', '-q', ...(noCache ? ['--no-cache'] : []), '-t', 'bench:1', ctx]),
  buildah: (ctx: string, noCache: boolean) => run('buildah', [...bh, 'bud', '-q', '--layers', '--isolation', 'chroot', '--pull-never', ...(noCache ? ['--no-cache'] : []), '-t', 'bench:1', ctx]),
};

const rows: Array<{ name: string; nsbox: number; buildah?: number }> = [];
const native: Record<string, number> = {};
try {
  const only = process.env.BENCH_CASES?.split(',');
  for (const [name, ctx] of Object.entries({ small, many, stages }).filter(([n]) => !only || only.includes(n))) {
    const samples: Record<string, { cold: number[]; warm: number[]; changed: number[] }> = {};
    for (const tool of ['nsbox', 'buildah'] as const) {
      if (tool === 'buildah' && !peer) continue;
      const s = (samples[tool] = { cold: [] as number[], warm: [] as number[], changed: [] as number[] });
      for (let i = 0; i < N; i++) {
        s.cold.push(tools[tool](ctx, true));
        s.warm.push(tools[tool](ctx, false));
        if (tool === 'nsbox' && nsbox[0] === launcher) {
          // the same warm build with no node on PATH: it succeeds only when the launcher answers alone
          const probe = spawnSync(launcher, ['build', '-q', '-t', 'bench:1', ctx], { env: { ...env, PATH: '/nonexistent-nsbox-bench' }, stdio: 'ignore' });
          native[name] = (native[name] ?? 0) + (probe.status === 0 ? 1 : 0);
        }
        writeFileSync(changed[name]!, `changed ${tool} ${i} ${Date.now()}\n`);
        s.changed.push(tools[tool](ctx, false));
      }
    }
    for (const phase of ['cold', 'warm', 'changed'] as const) {
      rows.push({ name: `${name} ${phase}`, nsbox: summarize(samples['nsbox']![phase]).median, ...(samples['buildah'] ? { buildah: summarize(samples['buildah'][phase]).median } : {}) });
    }
  }
} finally {
  if (peer) spawnSync('buildah', [...bh, 'rm', '--all']);
  if (peer) spawnSync('buildah', [...bh, 'rmi', '--all', '--force']);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`build, median of ${N} (ms; ${MB} MB in context b); nsbox: ${nsbox[0] === launcher ? 'the native launcher (build/Release/nsbox-launcher)' : 'node bin/nsbox.js (no launcher built)'}`);
console.log('case'.padEnd(18), 'nsbox'.padStart(9), 'buildah'.padStart(9), 'ratio'.padStart(7));
for (const r of rows) {
  const warm = r.name.endsWith(' warm') && nsbox[0] === launcher ? `  (launcher alone: ${native[r.name.slice(0, -5)] ?? 0} of ${N})` : '';
  console.log(r.name.padEnd(18), r.nsbox.toFixed(0).padStart(9), (r.buildah?.toFixed(0) ?? '-').padStart(9), (r.buildah ? (r.nsbox / r.buildah).toFixed(2) : '-').padStart(7), warm);
}
