/**
 * nsbox-runc as a Kubernetes runtime handler: containerd 1.6's CRI plugin (Debian's containerd)
 * with a runtime `nsbox` (io.containerd.runc.v2, BinaryName = nsbox-runc), driven over its CRI v1
 * gRPC API by @grpc/grpc-js, as the kubelet drives it: RunPodSandbox (host network, a pause image
 * this test builds and imports), CreateContainer, StartContainer, ExecSync, StopContainer,
 * RemoveContainer, StopPodSandbox, RemovePodSandbox. containerd is this test's own process (own
 * root, state dir, socket and config; never the system service) and is stopped afterwards; no
 * mount, cgroup or process of it is left.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { native } from '../../lib/native.js';
import { isRoot, rootfs, skipIf } from './_helpers.js';

type Grpc = typeof import('@grpc/grpc-js');
type Loader = typeof import('@grpc/proto-loader');
type Call = (method: string, req: object) => Promise<Record<string, unknown>>;

interface Ctx {
  dir: string;
  sock: string;
  runcRoot: string;
  cgroupParent: string;
  containerd: ChildProcess;
  call: Call;
  close: () => void;
}
/** The pod being tested, for the after hook (a test's changes to its context are its own). */
let liveSandbox: string | undefined;
const test = anyTest as TestFn<Ctx>;
const bin = fileURLToPath(new URL('../../build/Release/nsbox-runc', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/oci/main.js', import.meta.url));
const proto = fileURLToPath(new URL('../fixtures/cri-api-v1.proto', import.meta.url));
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

let grpc: Grpc | undefined;
let loader: Loader | undefined;
try {
  grpc = await import('@grpc/grpc-js');
  loader = await import('@grpc/proto-loader');
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
}
const reason = !isRoot
  ? 'needs root'
  : !existsSync(dist)
    ? 'dist/ is not built (npm test builds it)'
    : !existsSync(bin)
      ? 'build/Release/nsbox-runc is not built'
      : !has('containerd') || !has('ctr')
        ? "needs Debian's containerd (test/install-deps.sh)"
        : !grpc || !loader
          ? 'needs the dev dependencies @grpc/grpc-js and @grpc/proto-loader (npm install)'
          : undefined;
const rtest = skipIf(reason, test.serial);

const IMAGE = 'docker.io/library/nsbox-pause:cri-test';

/** Resolves when `pid` has exited (its pidfd becomes readable); at once when it is gone already. */
async function exited(pid: number): Promise<void> {
  let fd: number;
  try {
    fd = native.pidfdOpen(pid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw e;
  }
  await new Promise((resolve) => native.watchExit(fd, resolve));
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * An OCI image archive of the busybox rootfs (one uncompressed layer), whose default command is
 * `sleep infinity`: the pod's pause process and the app container's image in one.
 */
function buildImageArchive(dir: string): string {
  const layout = join(dir, 'image');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const hex = sha256(b);
    writeFileSync(join(blobs, hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const tar = spawnSync('tar', ['-C', rootfs(), '--numeric-owner', '--exclude=./.nsbox-*', '-cf', '-', '.'], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new Error(`tar of the rootfs: ${tar.stderr.toString()}`);
  const layer = put(tar.stdout);
  const config = put(Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: ['/bin/sleep'], Cmd: ['infinity'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  })));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  })));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifest,
      annotations: { 'io.containerd.image.name': IMAGE, 'org.opencontainers.image.ref.name': 'cri-test' },
    }],
  }));
  const archive = join(dir, 'image.tar');
  const pack = spawnSync('tar', ['-C', layout, '-cf', archive, '.']);
  if (pack.status !== 0) throw new Error(`tar of the layout: ${pack.stderr.toString()}`);
  return archive;
}

/** Each cgroup hierarchy's directory for this process's own cgroup (a relative cgroupsPath's base). */
function ownCgroupDirs(): string[] {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctrls, path] = /^\d+:([^:]*):(.*)$/.exec(line)!;
    own.set(ctrls!, path!);
  }
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n')) {
    const [pre, post] = line.split(' - ');
    const [fstype, , opts] = post!.split(' ');
    const mnt = pre!.split(' ')[4]!;
    if (fstype === 'cgroup2') dirs.push(join(mnt, own.get('') ?? '/'));
    if (fstype !== 'cgroup') continue;
    const key = [...own.keys()].find((k) => k !== '' && k.split(',').every((c) => opts!.split(',').includes(c)));
    if (key !== undefined) dirs.push(join(mnt, own.get(key)!));
  }
  return dirs;
}

const rm = (p: string) => rmSync(p, { recursive: true, force: true });

test.before(async (t) => {
  if (reason) return;
  const dir = mkdtempSync(join(tmpdir(), 'oci-cri-'));
  t.context.dir = dir;
  t.context.sock = join(dir, 'containerd.sock');
  t.context.runcRoot = join(dir, 'nsbox-runc');
  t.context.cgroupParent = `nsbox-cri-${randomBytes(4).toString('hex')}`;
  for (const d of ['cni-bin', 'cni-conf', 'opt', 'logs']) mkdirSync(join(dir, d));
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const config = join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    '[grpc]',
    `  address = "${t.context.sock}"`,
    '[ttrpc]',
    `  address = "${t.context.sock}.ttrpc"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${dir}/opt"`,
    `[${cri}]`,
    `  sandbox_image = "${IMAGE}"`,
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  disable_apparmor = true',
    // The pod's default oom_score_adj (-998) needs CAP_SYS_RESOURCE, which this machine's root may
    // lack (the kernel then refuses it with EACCES, as it would refuse runc): containerd's own knob
    // keeps it no lower than containerd's.
    '  restrict_oom_score_adj = true',
    `[${cri}.cni]`,
    `  bin_dir = "${dir}/cni-bin"`,
    `  conf_dir = "${dir}/cni-conf"`,
    // The runtimes table replaces containerd's own (runc), so the default must name ours.
    `[${cri}.containerd]`,
    '  default_runtime_name = "nsbox"',
    `[${cri}.containerd.runtimes.nsbox]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.nsbox.options]`,
    `  BinaryName = "${bin}"`,
    `  Root = "${t.context.runcRoot}"`,
    '',
  ].join('\n'));
  // Ready when its socket appears (inotify on the directory).
  const ready = new Promise<void>((resolve) => {
    const w = watch(dir, () => {
      if (existsSync(t.context.sock)) {
        w.close();
        resolve();
      }
    });
  });
  const log = join(dir, 'containerd.log');
  const c = spawn('sh', ['-c', `exec containerd --config '${config}' 2>'${log}'`], { stdio: 'ignore' });
  t.context.containerd = c;
  await new Promise<void>((resolve, reject) => {
    const died = (code: number | null) => reject(new Error(`containerd exited (${code}) before serving: ${readFileSync(log, 'utf8').slice(-2000)}`));
    c.once('exit', died);
    void ready.then(() => {
      c.off('exit', died);
      resolve();
    });
  });

  const def = loader!.loadSync(proto, { keepCase: true, longs: Number, enums: String, defaults: true });
  const pkg = grpc!.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: new (addr: string, creds: unknown) => Record<string, unknown> & { close(): void } } } };
  const client = new pkg.runtime.v1.RuntimeService(`unix://${t.context.sock}`, grpc!.credentials.createInsecure());
  t.context.close = () => client.close();
  t.context.call = (method, req) =>
    new Promise((resolve, reject) => {
      const fn = client[method] as (req: object, opts: object, cb: (e: Error | null, r: Record<string, unknown>) => void) => void;
      fn.call(client, req, { deadline: Date.now() + 120_000 }, (e, r) => (e ? reject(e) : resolve(r)));
    });

  const archive = buildImageArchive(dir);
  const imp = spawnSync('ctr', ['--address', t.context.sock, '-n', 'k8s.io', 'images', 'import', archive], { encoding: 'utf8', timeout: 120_000 });
  if (imp.status !== 0) throw new Error(`ctr images import: ${imp.stderr}`);
});

test.after.always(async (t) => {
  const { dir } = t.context;
  if (!dir) return;
  try {
    await cleanUp(t.context, (m) => t.log(m));
  } finally {
    rm(dir);
  }
});

/** Stops containerd, then ends and removes whatever of this test's pod is still there. */
async function cleanUp(ctx: Ctx, log: (m: string) => void): Promise<void> {
  const { dir, containerd: c } = ctx;
  if (c?.pid) {
    if (liveSandbox) {
      // A test that failed half-way: the pod and its containers go the way the kubelet removes them.
      await ctx.call('StopPodSandbox', { pod_sandbox_id: liveSandbox }).catch((e: unknown) => log(`StopPodSandbox: ${(e as Error).message}`));
      await ctx.call('RemovePodSandbox', { pod_sandbox_id: liveSandbox }).catch((e: unknown) => log(`RemovePodSandbox: ${(e as Error).message}`));
    }
    ctx.close?.();
    const gone = new Promise((resolve) => c.once('exit', resolve));
    native.sendSignal(native.pidfdOpen(c.pid), 15);
    await gone;
  }
  // Shims outlive containerd by design: any still serving this test's containerd are ended here.
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue; // gone while listed
    }
    if (cmd.startsWith('/usr/bin/containerd-shim') && cmd.includes(ctx.sock)) {
      log(`shim ${p} was left; ending it`);
      process.kill(Number(p), 'SIGKILL');
      await exited(Number(p));
    }
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
  for (const m of mounts.reverse()) {
    log(`mount ${m} was left; unmounting it`);
    spawnSync('umount', ['-l', m]);
  }
  // The pod's cgroups: whatever still runs in them is this test's (a pause or app process whose
  // shim was ended above) and is ended first.
  for (const d of ownCgroupDirs()) {
    const parent = join(d, ctx.cgroupParent);
    if (!existsSync(parent)) continue;
    const dirs = [parent, ...readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(parent, e.name))];
    for (const cg of dirs) {
      for (const pid of readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)) {
        log(`process ${pid} was left in ${cg}; ending it`);
        process.kill(pid, 'SIGKILL');
        await exited(pid);
      }
    }
    for (const cg of dirs.reverse()) rmdirSync(cg);
  }
}

const NODE = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' };

rtest('CRI: a pod on nsbox-runc: run the sandbox, create/start a container, ExecSync, stop and remove all', async (t) => {
  const { call, runcRoot } = t.context;
  const version = await call('Version', { version: 'v1' });
  t.is(version.runtime_name, 'containerd');

  const sandboxConfig = {
    metadata: { name: 'nsbox-pod', uid: randomBytes(8).toString('hex'), namespace: 'default', attempt: 0 },
    log_directory: join(t.context.dir, 'logs'),
    linux: { cgroup_parent: t.context.cgroupParent, security_context: { namespace_options: NODE } },
  };
  const run = await call('RunPodSandbox', { config: sandboxConfig, runtime_handler: 'nsbox' });
  const sandbox = String(run.pod_sandbox_id);
  liveSandbox = sandbox;
  t.regex(sandbox, /^[0-9a-f]{64}$/);
  // The sandbox's pause process is nsbox-runc's: its state, in the Root the runtime was given.
  const runcState = (id: string) => {
    const r = spawnSync(bin, ['--root', join(runcRoot, 'k8s.io'), 'state', id], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { status: string; pid: number; bundle: string };
  };
  const pause = runcState(sandbox);
  t.is(pause.status, 'running');
  t.true(existsSync(join(runcRoot, 'k8s.io', sandbox, 'calls')), "nsbox-runc's compiled calls file");
  t.is(readFileSync(`/proc/${pause.pid}/cmdline`, 'utf8'), '/bin/sleep\0infinity\0');
  // Host network: the pause process is in this host's network namespace.
  t.is(readlinkNs(pause.pid, 'net'), readlinkNs(process.pid, 'net'));

  const config = {
    metadata: { name: 'app', attempt: 0 },
    image: { image: IMAGE },
    command: ['/bin/sleep'],
    args: ['1000'],
    envs: [{ key: 'GREETING', value: 'hello-from-cri' }],
    linux: { resources: { memory_limit_in_bytes: 64 << 20 }, security_context: { namespace_options: NODE } },
  };
  const created = await call('CreateContainer', { pod_sandbox_id: sandbox, config, sandbox_config: sandboxConfig });
  const id = String(created.container_id);
  t.regex(id, /^[0-9a-f]{64}$/);
  // CRI's CreateContainer makes containerd's container record only; the runtime's create comes with StartContainer.
  await call('StartContainer', { container_id: id });
  const app = runcState(id);
  t.is(app.status, 'running');
  const memCgroup = /:memory:(.*)$/m.exec(readFileSync(`/proc/${app.pid}/cgroup`, 'utf8'))?.[1];
  t.true(memCgroup?.endsWith(`/${t.context.cgroupParent}/${id}`), memCgroup);
  t.is(readFileSync(`/sys/fs/cgroup/memory${memCgroup}/memory.limit_in_bytes`, 'utf8').trim(), String(64 << 20));

  // ExecSync: the env of the container, its own pid namespace (pid 1 is its sleep), the pod's ipc namespace.
  const exec = await call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo "$GREETING"; cat /proc/1/cmdline | tr "\\0" " "; echo; readlink /proc/self/ns/ipc'], timeout: 60 });
  t.is(exec.exit_code, 0, String(exec.stderr));
  const [greeting, pid1, ipc] = String(exec.stdout).split('\n');
  t.is(greeting, 'hello-from-cri');
  t.is(pid1, '/bin/sleep 1000 ');
  t.is(ipc, readlinkNs(pause.pid, 'ipc'));
  const failing = await call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo oops >&2; exit 3'], timeout: 60 });
  t.is(failing.exit_code, 3);
  t.is(String(failing.stderr), 'oops\n');

  // A container sharing the pod's pid namespace (pid POD): nsbox-runc joins it by path, so its
  // pid 1 is the pause process.
  const shared = { ...config, metadata: { name: 'shares-pid', attempt: 0 }, linux: { security_context: { namespace_options: { ...NODE, pid: 'POD' } } } };
  const sid = String((await call('CreateContainer', { pod_sandbox_id: sandbox, config: shared, sandbox_config: sandboxConfig })).container_id);
  await call('StartContainer', { container_id: sid });
  const inPod = await call('ExecSync', { container_id: sid, cmd: ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'], timeout: 60 });
  t.is(String(inPod.stdout), '/bin/sleep infinity ', String(inPod.stderr));
  await call('StopContainer', { container_id: sid, timeout: 0 });
  await call('RemoveContainer', { container_id: sid });

  await call('StopContainer', { container_id: id, timeout: 0 });
  await exited(app.pid);
  const status = await call('ContainerStatus', { container_id: id });
  t.is((status.status as { state: string }).state, 'CONTAINER_EXITED');
  t.is((status.status as { exit_code: number }).exit_code, 137);
  await call('RemoveContainer', { container_id: id });
  t.false(existsSync(join(runcRoot, 'k8s.io', id)));
  t.false(existsSync(`/sys/fs/cgroup/memory${memCgroup}`));

  await call('StopPodSandbox', { pod_sandbox_id: sandbox });
  await exited(pause.pid);
  await call('RemovePodSandbox', { pod_sandbox_id: sandbox });
  liveSandbox = undefined;
  // No container state left; .plans is the create plan cache (lib/oci/plan-cache.ts), kept on purpose.
  t.deepEqual(readdirSync(join(runcRoot, 'k8s.io')).filter((n) => n !== '.plans'), []);
  t.deepEqual(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`${t.context.dir}/`)), []);
});

function readlinkNs(pid: number, ns: string): string {
  return readlinkSync(`/proc/${pid}/ns/${ns}`);
}
