/** `/_ping`, `/version`, `/info`: what clients ask first, to learn the API version and the host. */
import { cpus, hostname, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { Cgroup } from '../../cgroup/cgroup.js';
import type { ApiContext } from '../api-context.js';
import { boolParam, filtersParam, intParam } from '../query.js';
import { pruneBuildCache } from '../../build/prune.js';
import { diskUsage } from '../../engine/disk-usage.js';
import { containerSummary } from '../container-json.js';
import { imageSummary } from '../image-json.js';
import { volumeJson } from './volumes.js';
import { API_VERSION, MIN_API_VERSION, type Router } from '../router.js';

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const UNAME_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i686', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch (e) {
    // A host without os-release (a minimal image): just its kernel's name.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'Linux';
    throw e;
  }
}

export function systemRoutes(router: Router, ctx: ApiContext): void {
  // Anonymous volumes no container uses; `all=true` (docker volume prune -a) named ones too.
  router.add('POST', '/volumes/prune', async (ex) => {
    const all = filtersParam(ex.query).get('all')?.[0];
    const { volumes } = await ctx.engine.pruneVolumes({ all: all === 'true' || all === '1' });
    ex.send(200, { VolumesDeleted: volumes.length ? volumes : null, SpaceReclaimed: 0 });
  });
  // docker builder prune: `all`, `keep-storage` (bytes)
  router.add('POST', '/build/prune', async (ex) => {
    const keep = intParam(ex.query, 'keep-storage') ?? intParam(ex.query, 'reserved-space');
    const r = await pruneBuildCache({ root: ctx.engine.root, all: boolParam(ex.query, 'all'), ...(keep !== undefined && keep > 0 ? { keepStorage: keep } : {}) });
    ex.send(200, { CachesDeleted: r.deleted.length ? r.deleted : null, SpaceReclaimed: r.spaceReclaimed });
  });

  router.add('GET', '/system/df', async (ex) => {
    const u = await diskUsage(ctx.engine);
    ex.send(200, {
      LayersSize: u.layersSize,
      Images: u.images.map((i) => ({ ...imageSummary(i.image), SharedSize: 0, Containers: i.containers })),
      Containers: u.containers.map((c) => ({ ...containerSummary(c.record), SizeRw: c.sizeRw, SizeRootFs: c.sizeRw })),
      Volumes: u.volumes.map((v) => ({ ...volumeJson(v.volume), UsageData: { Size: v.size, RefCount: v.volume.usedBy.length } })),
      BuildCache: u.buildCache.map((c) => ({
        ID: c.id.slice(0, 25),
        Parent: '',
        Parents: null,
        Type: c.type,
        Description: c.description,
        InUse: false,
        Shared: c.shared,
        Size: c.size,
        CreatedAt: c.createdAt.toISOString(),
        LastUsedAt: c.lastUsedAt.toISOString(),
        UsageCount: 0,
      })),
      BuilderSize: u.buildCache.reduce((n, c) => n + (c.shared ? 0 : c.size), 0),
    });
  });

  router.add('GET', '/_ping', async (ex) => {
    ex.send(200, 'OK', { 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache', 'Builder-Version': '1' });
  });

  router.add('GET', '/version', async (ex) => {
    const details = {
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: 'nsbox',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: GOARCH[process.arch] ?? process.arch,
      KernelVersion: release(),
      BuildTime: '',
    };
    ex.send(200, {
      Platform: { Name: 'nsbox' },
      Components: [{ Name: 'Engine', Version: ctx.version, Details: { ...details, Experimental: 'false' } }],
      Version: ctx.version,
      ...details,
    });
  });

  router.add('GET', '/info', async (ex) => {
    const [containers, images, cgroups] = await Promise.all([
      ctx.engine.list({ all: true }),
      ctx.engine.images.list(),
      Cgroup.detect().catch((e: unknown) => {
        // /info answers anyway (no cgroup driver); why goes to the daemon's log.
        ctx.engine.emit('warning', `/info: no cgroup layout: ${(e as Error).message}`, e);
        return undefined;
      }),
    ]);
    const count = (s: string) => containers.filter((c) => c.state === s).length;
    ex.send(200, {
      ID: '',
      Containers: containers.length,
      ContainersRunning: count('running'),
      ContainersPaused: count('paused'),
      ContainersStopped: containers.length - count('running') - count('paused'),
      Images: images.length,
      Driver: 'overlay2',
      DriverStatus: [],
      Plugins: { Volume: [], Network: ['host', 'none'], Authorization: null, Log: ['json-file'] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      OomKillDisable: false,
      IPv4Forwarding: false,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: cgroups?.mode === 'v2' ? '2' : '1',
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: osName(),
      OSVersion: '',
      OSType: 'linux',
      Architecture: UNAME_ARCH[process.arch] ?? process.arch,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: ['127.0.0.0/8'], Mirrors: [] },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      DockerRootDir: ctx.engine.root,
      Name: hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: ctx.version,
      Runtimes: { nsbox: { path: 'nsbox-shim' } },
      DefaultRuntime: 'nsbox',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: '',
      SecurityOptions: ['name=seccomp,profile=builtin'],
      Warnings: [],
    });
  });
}
