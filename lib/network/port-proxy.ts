/**
 * The SDK's port proxy, for containers that live in this process (the engine's live in their
 * shim, which relays the same sockets: cpp/shim/port-proxy.cc). A held IPv6 TCP socket ([::] or
 * [::1]) listens, and each connection is piped to the container: IPv6 has no route_localnet, so
 * ::1 is the one address DNAT cannot serve (see nft.ts). The server owns the socket from then on.
 */
import net from 'node:net';
import type { PortProxy } from './ports.js';
import { readProxyTarget } from './proxy-target.js';

export interface RunningProxies {
  /** The held fds the servers own now: the caller must not close them itself. */
  fds: ReadonlySet<number>;
  close(): Promise<void>;
}

export async function startProxies(proxies: readonly PortProxy[]): Promise<RunningProxies> {
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  try {
    for (const p of proxies) {
      // half-open both ways: a client that sends its request then its FIN still gets the answer
      const server = net.createServer({ allowHalfOpen: true }, (client) => {
        let host: string;
        try {
          host = p.targetFile ? readProxyTarget(p.targetFile, p.address) : p.address;
        } catch {
          // an unreadable target file (EACCES, EIO): this connection is refused; the next one reads it again
          host = '';
        }
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
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd: p.fd }, () => resolve());
      });
      servers.push(server);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { fds: new Set(proxies.map((p) => p.fd)), close };
}
