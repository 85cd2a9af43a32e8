/** lib/network's data plane as data: the files docker writes, link names, and what the runtime gets for a netns path. */
import test from 'ava';
import { hostsFile, resolvConf, type NetworkFilesInput } from '../../lib/network/files.js';
import { containerOfLink, hostLinkName } from '../../lib/network/endpoint.js';
import { buildContainerPlan, CLONE, type PlanContext } from '../../lib/runtime/plan.js';
import { ContainerOptionsSchema, validate } from '../../lib/runtime/options.js';

const base: NetworkFilesInput = { dir: '/x', hostname: 'web', extraHosts: [], dns: [], dnsSearch: [], dnsOptions: [], hostResolvConf: 'nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n' };

test("resolv.conf: the host's resolvers without loopback ones; a user network's server at its gateway; --dns wins over the host's", (t) => {
  t.is(resolvConf(base), 'nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n');
  t.is(resolvConf({ ...base, nameserver: '172.18.0.1' }), 'nameserver 172.18.0.1\nsearch corp.example\noptions edns0\n');
  t.is(resolvConf({ ...base, dns: ['1.1.1.1'], dnsSearch: ['a.b'], dnsOptions: ['ndots:2'] }), 'nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n');
  // Only loopback resolvers on the host: docker's fallback.
  t.is(resolvConf({ ...base, hostResolvConf: 'nameserver 127.0.0.1\n' }), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
});

test('hosts: localhost lines, --add-host entries, then the container address with its hostname and aliases', (t) => {
  const text = hostsFile({ ...base, ipAddress: '172.17.0.2', aliases: ['db'], extraHosts: [{ host: 'gw', ip: '10.0.0.1' }] });
  t.true(text.startsWith('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'));
  t.true(text.endsWith('10.0.0.1\tgw\n172.17.0.2\tweb db\n'));
});

test('host link names fit IFNAMSIZ and name their container', (t) => {
  const name = hostLinkName('0123456789abcdef'.repeat(4), 'fedcba9876543210'.repeat(4));
  t.is(name, 'nsv01234567fedc');
  t.true(name.length <= 15);
  t.is(containerOfLink(name), '01234567');
  t.is(containerOfLink('nsbox0'), undefined);
  t.is(containerOfLink('eth0'), undefined);
});

test('a netns path: no CLONE_NEWNET (the spawning thread joins it), no lo_up, /sys bound in a user namespace', (t) => {
  const ctx: PlanContext = { id: 'abcdef0123456789', root: '/r', sandbox: false, sandboxEntries: [], privileged: true, hostUid: 0, hostGid: 0, cgroups: [], bindIsDir: [] };
  const cfg = validate(ContainerOptionsSchema, { rootfs: '/r', command: ['/bin/true'], namespaces: { net: '/run/nsbox/netns/abc' } }, 'container options');
  const p = buildContainerPlan(cfg, ctx);
  t.is(p.cloneFlags & CLONE.NEWNET, 0);
  t.false(p.ops.some((o) => o.op === 'lo_up'));
  const userns = buildContainerPlan(validate(ContainerOptionsSchema, { rootfs: '/r', command: ['/bin/true'], namespaces: { net: '/run/nsbox/netns/abc', user: true } }, 'container options'), ctx);
  t.true(userns.ops.some((o) => o.op === 'bind' && o.source === '/sys'));
  t.throws(() => validate(ContainerOptionsSchema, { rootfs: '/r', command: ['/bin/true'], namespaces: { net: 'relative' } }, 'container options'), { message: /net/ });
});
