/**
 * The SDK's port proxy, for containers that live in this process (the engine's live in their
 * shim, which relays the same sockets: cpp/shim/port-proxy.cc). A held IPv6 socket ([::] or
 * [::1]) is served: TCP listens and pipes each connection to the container, UDP relays datagrams
 * through one upstream socket per client. IPv6 has no route_localnet, so ::1 is the one address
 * DNAT cannot serve (see nft.ts). The servers own the sockets from then on. The container's address
 * is read at each new connection or client (proxy-target.ts): it follows connect and disconnect.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { PortProxy } from './ports.js';
import { readProxyTarget } from './proxy-target.js';

export interface RunningProxies {
  /** The held fds the servers own now: the caller must not close them itself. */
  fds: ReadonlySet<number>;
  close(): Promise<void>;
}

/** A UDP client without a datagram either way for this long loses its upstream socket (docker-proxy's 90 s). */
export const UDP_IDLE_MS = 90_000;
/** At most this many UDP clients per port: the longest idle goes first. */
const UDP_FLOWS = 1024;

/** Where a new connection or client goes now; '' when nowhere (no network left, an unreadable file). */
function targetOf(p: PortProxy): string {
  try {
    return p.targetFile ? readProxyTarget(p.targetFile, p.address) : p.address;
  } catch {
    // an unreadable target file (EACCES, EIO): this connection is refused; the next one reads it again
    return '';
  }
}

function serveTcp(p: PortProxy, sockets: Set<net.Socket>): Promise<() => Promise<void>> {
  // half-open both ways: a client that sends its request then its FIN still gets the answer
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const host = targetOf(p);
    // no network left (all disconnected): refused, as the held port is while nothing listens
    if (!host) return void client.destroy();
    const up = net.connect({ host, port: p.port, allowHalfOpen: true });
    for (const s of [client, up]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      // a reset or a refused connect ends both sides; the error is the client's to see as a reset
      s.on('error', () => {
        client.destroy();
        up.destroy();
      });
    }
    client.pipe(up);
    up.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: p.fd }, () => resolve(() => new Promise<void>((done) => server.close(() => done()))));
  });
}

function serveUdp(p: PortProxy): Promise<() => Promise<void>> {
  const held = dgram.createSocket('udp6');
  // `pending`: datagrams that came before the upstream socket's connect finished
  const flows = new Map<string, { up: dgram.Socket; timer: NodeJS.Timeout; pending?: Buffer[] }>();
  const drop = (key: string) => {
    const f = flows.get(key);
    if (!f) return;
    flows.delete(key);
    clearTimeout(f.timer);
    f.up.close();
  };
  const idle = (key: string) => setTimeout(() => drop(key), UDP_IDLE_MS).unref();
  held.on('message', (msg, from) => {
    const key = `[${from.address}]:${from.port}`;
    let f = flows.get(key);
    if (!f) {
      const host = targetOf(p);
      // no network left: the datagram is dropped, as one to a port nothing reads
      if (!host) return;
      if (flows.size >= UDP_FLOWS) drop(flows.keys().next().value!);
      const up = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      // an ICMP unreachable (nothing listens in the container yet) ends this client's flow; the next datagram makes another
      up.on('error', () => drop(key));
      up.on('message', (reply) => {
        const g = flows.get(key);
        if (g) g.timer.refresh();
        held.send(reply, from.port, from.address);
      });
      const flow: { up: dgram.Socket; timer: NodeJS.Timeout; pending?: Buffer[] } = { up, timer: idle(key), pending: [] };
      flows.set(key, flow);
      up.connect(p.port, host, () => {
        for (const m of flow.pending ?? []) up.send(m);
        delete flow.pending;
      });
      f = flow;
    } else {
      // most recently used last: the first in the map is the longest idle
      flows.delete(key);
      flows.set(key, f);
      f.timer.refresh();
    }
    if (f.pending) f.pending.push(msg);
    else f.up.send(msg);
  });
  return new Promise((resolve, reject) => {
    held.once('error', reject);
    held.bind({ fd: p.fd }, () => {
      held.off('error', reject);
      // a send to a client that is gone (ICMP unreachable): nothing to tell anyone
      held.on('error', () => undefined);
      resolve(async () => {
        for (const k of [...flows.keys()]) drop(k);
        await new Promise<void>((done) => held.close(() => done()));
      });
    });
  });
}

export async function startProxies(proxies: readonly PortProxy[]): Promise<RunningProxies> {
  const closers: Array<() => Promise<void>> = [];
  const sockets = new Set<net.Socket>();
  const close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(closers.map((c) => c()));
  };
  try {
    for (const p of proxies) closers.push(await (p.protocol === 'udp' ? serveUdp(p) : serveTcp(p, sockets)));
  } catch (err) {
    await close();
    throw err;
  }
  return { fds: new Set(proxies.map((p) => p.fd)), close };
}
