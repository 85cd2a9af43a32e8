// Pulling the debian bookworm minbase image (one 51 MB gzip layer) into an empty store, against
// `skopeo copy` to an empty OCI dir; and unpacking that layer blob, against GNU `tar -xzf`. Peers
// alternate within one run. See bench/README.md.
//
//   node --import=tsx bench/pull.ts    (root; BENCH_N=5 timed runs per peer after one warm-up each,
//                                       NSBOX_REGISTRY=host:port, default 127.0.0.1:5000)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize, type Summary } from './lib/stats.ts';
import { hasCommand } from './lib/has-command.ts';

const runs = Number(process.env.BENCH_N ?? 5);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_N must be a positive integer, not ${process.env.BENCH_N}`);
const registry = process.env.NSBOX_REGISTRY || '127.0.0.1:5000';
const repo = 'debian';
const imageTag = 'bookworm-minbase';
const ref = `${registry}/${repo}:${imageTag}`;

// Everything the benchmark writes (stores, OCI dirs, unpack dirs, the layer blob) lives in `work`,
// removed at exit however it exits; a child still running then is killed first.
const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'nsbox-bench-pull-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  try {
    rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  } catch (error) {
    console.error(`cleanup: ${(error as Error).message}`);
  }
});
// On a signal, the running skopeo or tar is killed and reaped before the files go.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    const gone = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of children) child.kill('SIGKILL');
    const deadline = new Promise((resolve) => setTimeout(resolve, 2000));
    void Promise.race([Promise.all(gone), deadline]).then(() => process.exit(130));
  });
}

function fail(message: string): never {
  console.error(`bench/pull: ${message}`);
  process.exit(2);
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Descriptor { digest: string; size: number; mediaType: string }

/** The image's layer descriptor and diff id, straight from the registry (plain HTTP, loopback). */
async function describeImage(): Promise<{ layer: Descriptor; diffId: string }> {
  const seed = `seed it with: sudo ../shared/registry/seed-images   (from /work/main; ~60 s the first time; ` +
    `deps: ../shared/registry/install-deps), or point NSBOX_REGISTRY at a registry that has it`;
  let response: Response;
  try {
    response = await fetch(`http://${registry}/v2/${repo}/manifests/${imageTag}`, { headers: { accept: MANIFEST_TYPES } });
  } catch (error) {
    fail(`no registry answers on ${registry} (${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}); ${seed}`);
  }
  if (response.status !== 200) fail(`${ref} is not there (GET manifest: HTTP ${response.status}); ${seed}`);
  const manifest = (await response.json()) as { config: Descriptor; layers: Descriptor[] };
  if (manifest.layers?.length !== 1) fail(`${ref} should have one layer, it has ${manifest.layers?.length}`);
  const config = (await (await fetch(`http://${registry}/v2/${repo}/blobs/${manifest.config.digest}`)).json()) as {
    rootfs: { diff_ids: string[] };
  };
  return { layer: manifest.layers[0]!, diffId: config.rootfs.diff_ids[0]! };
}

async function download(desc: Descriptor, file: string): Promise<void> {
  const response = await fetch(`http://${registry}/v2/${repo}/blobs/${desc.digest}`);
  if (response.status !== 200) fail(`GET blob ${desc.digest}: HTTP ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (digest !== desc.digest) fail(`blob ${desc.digest} downloaded as ${digest}`);
  writeFileSync(file, bytes);
}

/** Runs a command, timed from just before the spawn to its 'exit'; rejects with its stderr's last line. */
function timeCommand(file: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => {
      children.delete(child);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      children.delete(child);
      if (code === 0) return resolve(ms);
      const detail = stderr.trim().split('\n').at(-1) || 'no message';
      reject(new Error(`${file} exited with ${signal ?? `status ${code}`}: ${detail}`));
    });
  });
}


let serial = 0;
const tag = randomBytes(3).toString('hex');
/**
 * A fresh, empty directory under `work`, kept until the benchmark ends. This VM's ext4 has no
 * journal, and there the inode allocator skips every inode freed in the last 60-360 s, testing each
 * one (ext4 `recently_deleted`): creating the layer's 6657 files soon after a delete of as many
 * costs ~0.7 ms per file instead of ~0.1 ms, whoever creates them, and hides the peers' own cost.
 * So nothing is deleted between runs, and `work` is marked a top directory (`chattr +T`): each run's
 * directory is then placed by ext4's Orlov allocator in a block group picked from its (random) name,
 * mostly away from inodes that earlier benchmarks or tests freed.
 */
async function withFreshDir<T>(kind: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(work, `${kind}-${serial++}-${tag}`);
  mkdirSync(dir);
  return body(dir);
}

/** One peer: `once` runs it in a fresh dir and resolves to named timings (ms); `check` looks at the result of the warm-up. */
interface Peer {
  name: string;
  once(check?: boolean): Promise<Record<string, number>>;
}

type Lib = typeof import('../lib/index.ts');
type Unpack = typeof import('../lib/storage/unpack.ts');

const { layer, diffId } = await describeImage();
try {
  execFileSync('chattr', ['+T', work], { stdio: 'ignore' });
} catch {
  console.error(`note: chattr +T ${work} failed: run directories are allocated near each other`);
}
// Every run's output stays until the end (see withFreshDir): about 0.5 GB per round of the four peers.
const need = (runs + 1) * 0.5e9;
const fs = statfsSync(work);
if (fs.bavail * fs.bsize < need) fail(`${work} has ${(fs.bavail * fs.bsize / 1e9).toFixed(1)} GB free; ${runs} runs need ~${(need / 1e9).toFixed(1)} GB`);
const blob = join(work, 'layer.blob');
await download(layer, blob);
const mb = (layer.size / 1e6).toFixed(1);
console.error(`image ${ref}: layer ${layer.digest.slice(0, 19)}… ${mb} MB gzip; work dir ${work}`);

const { Image } = (await import(new URL('../lib/index.ts', import.meta.url).href)) as Lib;
const { unpackLayer } = (await import(new URL('../lib/storage/unpack.ts', import.meta.url).href)) as Unpack;

const nsboxPull: Peer = {
  name: 'nsbox Image.pull',
  once: (check) =>
    withFreshDir('store', async (root) => {
      let downloaded = 0;
      const start = process.hrtime.bigint();
      const image = await Image.pull(ref, {
        root,
        onProgress: (p) => {
          // The layer's last byte is in and its digest checked: the unpack, which ran alongside the
          // download, finishes behind it (then the blob is renamed and the layer published).
          if (p.phase === 'done') downloaded = Number(process.hrtime.bigint() - start) / 1e6;
        },
      });
      const total = Number(process.hrtime.bigint() - start) / 1e6;
      if (check) {
        const [dir] = await image.layerDirs();
        if (!dir || !existsSync(join(dir, 'usr/bin/bash'))) throw new Error(`nsbox: no usr/bin/bash in the pulled layer ${dir}`);
      }
      if (!downloaded) throw new Error('nsbox: no "done" progress event: cannot tell the download part');
      return { total, download: downloaded, unpack: total - downloaded };
    }),
};

// What skopeo does: fetch and verify the content, no unpack (Image.pull's `unpack: false`; the
// layers are then unpacked when a container first runs the image).
const nsboxFetch: Peer = {
  name: 'nsbox Image.pull unpack:false',
  once: (check) =>
    withFreshDir('store', async (root) => {
      const start = process.hrtime.bigint();
      const image = await Image.pull(ref, { root, unpack: false });
      const total = Number(process.hrtime.bigint() - start) / 1e6;
      if (check && image.layers.length === 0) throw new Error('nsbox: the pulled image has no layers');
      return { total };
    }),
};

const skopeoPull: Peer = {
  name: 'skopeo copy',
  once: (check) =>
    withFreshDir('oci', async (dir) => {
      const ms = await timeCommand('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:x`]);
      if (check && !existsSync(join(dir, 'blobs', ...layer.digest.split(':')))) throw new Error('skopeo: the layer blob is not in the OCI dir');
      return { total: ms };
    }),
};

const nsboxUnpack: Peer = {
  name: 'nsbox unpackLayer',
  once: (check) =>
    withFreshDir('unpack-nsbox', async (dir) => {
      const start = process.hrtime.bigint();
      const result = await unpackLayer(blob, dir);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (check && result.diffId !== diffId) throw new Error(`nsbox: unpack hashed the tar to ${result.diffId}, the config says ${diffId}`);
      return { total: ms };
    }),
};

const tarUnpack: Peer = {
  name: 'tar -xzf',
  once: (check) =>
    withFreshDir('unpack-tar', async (dir) => {
      const ms = await timeCommand('tar', ['-xzf', blob, '-C', dir, '--same-owner', '--numeric-owner']);
      if (check && !existsSync(join(dir, 'usr/bin/bash'))) throw new Error('tar: no usr/bin/bash');
      return { total: ms };
    }),
};

/**
 * Writes the file system's dirty pages out (untimed) before each timed run. Runs keep their output
 * (see withFreshDir), ~0.3 GB a run; without this, the kernel's background writeback starts partway
 * through the benchmark (at 10 % of available memory dirty) and lands on whichever run is going then.
 */
function flush(): void {
  execFileSync('sync', ['-f', work], { stdio: 'ignore' });
}

/** One warm-up each (checked), then `runs` timed rounds, the order flipping every round. */
async function race(a: Peer, b: Peer): Promise<Map<Peer, Record<string, number>[]> | string> {
  const samples = new Map<Peer, Record<string, number>[]>([[a, []], [b, []]]);
  try {
    for (const peer of [a, b]) {
      console.error(`warm-up: ${peer.name}`);
      await peer.once(true);
    }
    for (let i = 0; i < runs; i++) {
      for (const peer of i % 2 ? [b, a] : [a, b]) {
        flush();
        const t = await peer.once();
        samples.get(peer)!.push(t);
        console.error(`run ${i + 1}/${runs} ${peer.name}: ${Object.entries(t).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
      }
    }
  } catch (error) {
    return (error as Error).message.split('\n')[0]!;
  }
  return samples;
}

const column = (list: Record<string, number>[], key: string): Summary => summarize(list.map((t) => t[key]!));

/** [name, summary or why it is missing, ratio to the peer]; a derived row has no p90 (NaN). */
type Row = [string, Summary | string, number | undefined];
const rows: Row[] = [];
const ratios: string[] = [];
const ratio = (a: Summary, b: Summary) => (a.median / b.median).toFixed(2);
let skopeoMedian: number | undefined;
let nsboxTotal: Summary | undefined;

if (!hasCommand('skopeo')) {
  rows.push(['skopeo copy', 'unavailable: skopeo is not installed', undefined]);
  ratios.push('pull nsbox/skopeo = n/a (skopeo unavailable)');
} else {
  console.error(`pull: ${nsboxPull.name} vs ${skopeoPull.name}`);
  const pull = await race(nsboxPull, skopeoPull);
  if (typeof pull === 'string') {
    rows.push(['pull', `failed: ${pull}`, undefined]);
    ratios.push('pull nsbox/skopeo = n/a (failed)');
  } else {
    const n = pull.get(nsboxPull)!;
    const s = column(pull.get(skopeoPull)!, 'total');
    const total = column(n, 'total');
    const dl = column(n, 'download');
    skopeoMedian = s.median;
    nsboxTotal = total;
    rows.push(
      ['nsbox pull: total (download + unpack)', total, total.median / s.median],
      ['nsbox pull: until the last byte (download)', dl, dl.median / s.median],
      ['nsbox pull: after it (unpack tail, publish)', column(n, 'unpack'), undefined],
      ['skopeo copy (download only)', s, 1],
    );
    ratios.push(`pull download-only nsbox/skopeo = ${ratio(dl, s)}`, `pull nsbox/skopeo = ${ratio(total, s)}`);
  }
  console.error(`pull: ${nsboxFetch.name} vs ${skopeoPull.name}`);
  const fetch = await race(nsboxFetch, skopeoPull);
  if (typeof fetch === 'string') {
    rows.push(['pull unpack:false', `failed: ${fetch}`, undefined]);
  } else {
    const f = column(fetch.get(nsboxFetch)!, 'total');
    const s = column(fetch.get(skopeoPull)!, 'total');
    rows.push(['nsbox pull, unpack: false (content only)', f, f.median / s.median], ['skopeo copy (same race)', s, 1]);
    ratios.push(`pull content-only (unpack: false) nsbox/skopeo = ${ratio(f, s)}`);
  }
}

console.error(`unpack: ${nsboxUnpack.name} vs ${tarUnpack.name}`);
const unpack = await race(nsboxUnpack, tarUnpack);
if (typeof unpack === 'string') {
  rows.push(['unpack', `failed: ${unpack}`, undefined]);
  ratios.push('unpack nsbox/tar = n/a (failed)');
} else {
  const n = column(unpack.get(nsboxUnpack)!, 'total');
  const t = column(unpack.get(tarUnpack)!, 'total');
  rows.push(['nsbox unpackLayer', n, n.median / t.median], ['tar -xzf', t, 1]);
  ratios.push(`unpack nsbox/tar = ${ratio(n, t)}`);
  // What the peers take for what Image.pull does: their medians added (not a measured run).
  if (skopeoMedian !== undefined && nsboxTotal) {
    const sum = skopeoMedian + t.median;
    rows.push(['skopeo copy + tar -xzf (sum of medians)', { median: sum, p90: NaN }, undefined]);
    ratios.unshift(`pull total nsbox/(skopeo+tar) = ${(nsboxTotal.median / sum).toFixed(2)}`);
  }
}

console.error(`${runs} timed runs per peer after one warm-up each (page caches not dropped); pull rows vs skopeo copy, unpack rows vs tar`);
const header = ['row', 'median ms', 'p90 ms', 'vs peer'];
const width = Math.max(...[header[0]!, ...rows.map((r) => r[0])].map((s) => s.length));
const cells = (r: Row): string[] =>
  typeof r[1] === 'string' ? [r[0], r[1]] : [r[0], r[1].median.toFixed(0), Number.isNaN(r[1].p90) ? '-' : r[1].p90.toFixed(0), r[2] === undefined ? '-' : r[2].toFixed(2)];
const line = (c: string[]) =>
  c.length === 2 ? `${c[0]!.padEnd(width)}  ${c[1]}` : [c[0]!.padEnd(width), ...c.slice(1).map((x) => x.padStart(9))].join('  ');
console.log(line(header));
for (const row of rows) console.log(line(cells(row)));
for (const r of ratios) console.log(r);
