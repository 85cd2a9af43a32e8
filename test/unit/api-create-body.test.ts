/**
 * docker's create body → the engine's CreateRequest: what the docker CLI sends (every field, zero
 * values, Go's nulls) maps onto ContainerOptions; unknown fields are ignored; bad input is a 400.
 */
import test from 'ava';
import { ApiError } from '../../lib/api/api-error.js';
import { CreateBodySchema, createRequestOf } from '../../lib/api/create-body.js';
import { ContainerOptionsSchema } from '../../lib/runtime/options.js';
import { ValidationError } from '../../lib/errors.js';

const map = (body: unknown, name?: string) => createRequestOf(CreateBodySchema.parse(body), name);

// The shape docker run -it --rm -e A=1 sends, trimmed of nothing that matters: zero values and nulls.
const cliBody = {
  Hostname: '', Domainname: '', User: '', AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, OpenStdin: true, StdinOnce: true,
  Env: ['A=1', 'UNSET'], Cmd: ['sh'], Image: 'busybox', Volumes: {}, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: {},
  HostConfig: {
    Binds: null, ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default', PortBindings: {}, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: true, VolumeDriver: '', VolumesFrom: null, ConsoleSize: [30, 100], CapAdd: null, CapDrop: null, CgroupnsMode: '', Dns: [], DnsOptions: [],
    Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null, UTSMode: '', UsernsMode: '', ShmSize: 0, Isolation: '',
    CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0, CpuPeriod: 0, CpuQuota: 0, CpusetCpus: '', CpusetMems: '', Devices: [],
    MemoryReservation: 0, MemorySwap: 0, PidsLimit: null, Ulimits: [], Mounts: null, MaskedPaths: null, ReadonlyPaths: null,
  },
  NetworkingConfig: { EndpointsConfig: { default: {} } },
  Platform: null,
};

test('the docker CLI\'s run -it --rm body: zero values unset, a terminal of the client\'s size, own network', (t) => {
  const { request, warnings } = map(cliBody, 'web');
  const { network, ...rest } = request;
  t.deepEqual(rest, {
    name: 'web',
    options: { image: 'busybox', pull: 'never', command: ['sh'], env: ['A=1'], namespaces: { net: true }, tty: { cols: 100, rows: 30 } },
    openStdin: true,
    autoRemove: true,
  });
  // `default` without published ports: nsbox's default mode, none (lib/network/network-mode.ts).
  t.like(network, { mode: 'none', ports: [] });
  t.deepEqual(warnings, []);
  t.true(ContainerOptionsSchema.safeParse(request.options).success, 'the options pass the runtime\'s own schema');
});

test('HostConfig limits, mounts, network, restart, capabilities', (t) => {
  const { request } = map({
    Image: '127.0.0.1:5000/app:1',
    Entrypoint: ['/bin/app'],
    Cmd: ['--serve'],
    User: 'root:root',
    WorkingDir: '/srv',
    Hostname: 'box',
    Labels: { team: 'a' },
    StopSignal: 'SIGINT',
    Tty: false,
    HostConfig: {
      Binds: ['/data:/data:ro', '/w:/w'],
      Tmpfs: { '/run': 'rw,size=64m,mode=1777' },
      Mounts: [{ Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1048576 } }],
      Memory: 268435456, MemorySwap: -1, NanoCpus: 500000000, CpuShares: 512, PidsLimit: 64, CpusetCpus: '0',
      NetworkMode: 'host', RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 }, CapAdd: ['NET_ADMIN'], CapDrop: ['MKNOD'],
      Privileged: true, ReadonlyRootfs: true, PortBindings: { '80/tcp': [{ HostPort: '8080' }] },
    },
  });
  t.like(request.options, {
    entrypoint: ['/bin/app'], command: ['--serve'], user: '0:0', cwd: '/srv', hostname: 'box', labels: { team: 'a' }, stopSignal: 'SIGINT',
    readonlyRootfs: true, privileged: true, capAdd: ['NET_ADMIN'], capDrop: ['MKNOD'], namespaces: { net: false },
    resources: { memory: 268435456, memorySwap: -1, cpus: 0.5, cpuShares: 512, pids: 64, cpuset: { cpus: '0' } },
  });
  t.deepEqual(request.options.mounts, [
    { type: 'bind', source: '/data', target: '/data', readonly: true, recursive: true },
    { type: 'bind', source: '/w', target: '/w', readonly: false, recursive: true },
    { type: 'tmpfs', target: '/scratch', readonly: false, size: 1048576 },
    { type: 'tmpfs', target: '/run', readonly: false, size: '64m', mode: 0o1777 },
  ]);
  t.is(request.restart, 'on-failure:3');
  t.is(request.options.tty, undefined);
  t.true(ContainerOptionsSchema.safeParse(request.options).success);
  t.regex(map({ Image: 'x', HostConfig: { NetworkMode: 'host', PortBindings: { '80/tcp': [{ HostPort: '1' }] } } }).warnings[0]!, /Published ports are discarded when using host network mode/);
  t.like(request.network, { mode: 'host', ports: [] });
  // Published ports need a bridge: `default` with PortBindings is bridge.
  t.like(map({ Image: 'x', HostConfig: { NetworkMode: 'default', PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } }).request.network, {
    mode: 'bridge', networks: [{ network: 'bridge' }], ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 }],
  });
});

test('--entrypoint "" clears the entrypoint; bridge is taken as none; CpuQuota without NanoCpus', (t) => {
  t.deepEqual(map({ Image: 'x', Entrypoint: [''] }).request.options.entrypoint, []);
  t.deepEqual(map({ Image: 'x', HostConfig: { NetworkMode: 'bridge' } }).request.options.namespaces, { net: true });
  t.is(map({ Image: 'x', HostConfig: { CpuQuota: 50000, CpuPeriod: 100000 } }).request.options.resources?.cpus, 0.5);
  t.is(map({ Image: 'x', Cmd: 'echo hi' }).request.options.command?.join(','), 'echo,hi', 'an old client\'s string Cmd');
});

test('volumes: Binds NAME:/path, Mounts of type volume, and Volumes (-v /path) not already mounted', (t) => {
  const { request } = map({
    Image: 'x',
    Volumes: { '/anon': {}, '/named': {} },
    HostConfig: { Binds: ['pg:/named:ro', '/etc:/host'], Mounts: [{ Type: 'volume', Source: 'cache', Target: '/c' }, { Type: 'volume', Target: '/m' }] },
  });
  t.deepEqual(request.volumes, [
    { name: 'pg', target: '/named', readonly: true },
    { name: 'cache', target: '/c', readonly: false },
    { target: '/m', readonly: false },
    { target: '/anon', readonly: false },
  ]);
  t.deepEqual(request.options.mounts, [{ type: 'bind', source: '/etc', target: '/host', readonly: false, recursive: true }]);
});

test('what nsbox cannot do is a 400 that says so', (t) => {
  const bad = (body: unknown) => t.throws(() => map(body), { instanceOf: ApiError });
  t.regex(bad({ Image: 'x', HostConfig: { Binds: ['./rel:/data'] } }).message, /absolute host path/);
  t.like(map({ Image: 'x', HostConfig: { NetworkMode: 'container:web' } }).request.network, { mode: 'container', container: 'web' });
  t.regex(bad({ Image: 'x', HostConfig: { Mounts: [{ Type: 'npipe', Target: '/v' }] } }).message, /bind, volume and tmpfs/);
  t.throws(() => map({ Image: 'x', HostConfig: { Binds: ['bad name:/d'] } }), { instanceOf: ValidationError, message: /not a volume name/ });
  t.regex(bad({ Image: 'x', HostConfig: { Tmpfs: { '/t': 'size=lots' } } }).message, /invalid tmpfs size/);
  t.false(CreateBodySchema.safeParse({ Cmd: ['sh'] }).success, 'no image');
  t.false(CreateBodySchema.safeParse({ Image: 'x', Env: 'A=1' }).success, 'Env must be a list');
  t.true(CreateBodySchema.safeParse({ Image: 'x', SomethingNew: { a: 1 } }).success, 'unknown fields are ignored');
});
