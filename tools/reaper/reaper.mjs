/**
 * A reaper speaking the protocol of testcontainers' Ryuk (testcontainers/moby-ryuk), for engines
 * whose hosts cannot pull `testcontainers/ryuk`: tools/reaper/make-image.sh puts it in an image
 * with the node binary it runs on. Node's built-ins only: the image holds nothing else.
 *
 * Protocol: clients connect over TCP (RYUK_PORT, 8080) and send lines, each a URL query of docker
 * filters (`label=org.testcontainers.session-id=abc`); each line is answered `ACK\n`. Once every
 * client has gone and none came back within RYUK_RECONNECTION_TIMEOUT (10s), or none came at all
 * within RYUK_CONNECTION_TIMEOUT (60s), or on SIGTERM/SIGINT, the containers (forced, with their
 * anonymous volumes), networks, volumes and images matching any filter are removed through the
 * Docker Engine API on /var/run/docker.sock (DOCKER_HOST=unix://… overrides), and the process
 * exits. Containers labelled `org.testcontainers.ryuk=true` (reapers) are spared. A matching
 * resource created after the prune began means a client is still at work: the wait starts again.
 */
import http from 'node:http';
import net from 'node:net';

const RYUK_LABEL = 'org.testcontainers.ryuk';

/** Go's duration syntax as Ryuk reads its environment: `10s`, `1m30s`, `500ms`. */
export function parseDuration(text) {
  const units = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index !== consumed) break;
    total += Number(m[1]) * units[m[2]];
    consumed = re.lastIndex;
  }
  if (text === '0') return 0;
  if (consumed === 0 || consumed !== text.length) throw new Error(`invalid duration "${text}"`);
  return total;
}

function setting(env, name, fallback, parse) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  try {
    return parse(raw);
  } catch (e) {
    throw new Error(`${name}: ${e.message}`);
  }
}

export function loadConfig(env = process.env) {
  const int = (s) => {
    if (!/^\d+$/.test(s)) throw new Error(`not a number: "${s}"`);
    return Number(s);
  };
  const socketPath = (env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
  if (env.DOCKER_HOST && !env.DOCKER_HOST.startsWith('unix://')) throw new Error(`DOCKER_HOST: only unix:// sockets are supported, not ${env.DOCKER_HOST}`);
  return {
    port: setting(env, 'RYUK_PORT', 8080, int),
    connectionTimeout: setting(env, 'RYUK_CONNECTION_TIMEOUT', 60_000, parseDuration),
    reconnectionTimeout: setting(env, 'RYUK_RECONNECTION_TIMEOUT', 10_000, parseDuration),
    requestTimeout: setting(env, 'RYUK_REQUEST_TIMEOUT', 10_000, parseDuration),
    removeRetries: setting(env, 'RYUK_REMOVE_RETRIES', 10, int),
    verbose: setting(env, 'RYUK_VERBOSE', false, (s) => s === 'true' || s === '1'),
    socketPath,
  };
}

const log = (msg, fields = {}) => process.stdout.write(`${new Date().toISOString()} ${msg}${Object.entries(fields).map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join('')}\n`);

/** One Engine API request; resolves { status, json }, rejects on a transport error or timeout. */
function request(cfg, method, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: cfg.socketPath, method, path, timeout: cfg.requestTimeout, headers: { Host: 'docker' } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          // Not JSON (/_ping's "OK", a proxy's error page): the status says enough.
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${cfg.requestTimeout} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A filter line as docker's filters JSON ({"label":{"a=b":true}}), with a key independent of order. */
export function parseFilterLine(line) {
  const filters = {};
  for (const [type, value] of new URLSearchParams(line)) (filters[type] ??= {})[value] = true;
  const key = JSON.stringify(Object.keys(filters).sort().map((t) => [t, Object.keys(filters[t]).sort()]));
  return { filters, key };
}

class ChangedError extends Error {}

/** The resources matching the filters, refusing ones created after `since` (a client still at work). */
async function affected(cfg, filterSets, since) {
  const out = { containers: new Set(), networks: new Set(), volumes: new Set(), images: new Set() };
  const list = async (path) => {
    const r = await request(cfg, 'GET', path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text.trim()}`);
    return r.json;
  };
  for (const filters of filterSets) {
    const q = encodeURIComponent(JSON.stringify(filters));
    for (const c of await list(`/containers/json?all=1&filters=${q}`)) {
      if (c.Labels?.[RYUK_LABEL] === 'true') continue;
      if (c.Created * 1000 > since) throw new ChangedError(`container ${c.Id}`);
      out.containers.add(c.Id);
    }
    for (const n of await list(`/networks?filters=${q}`)) {
      if (Date.parse(n.Created) > since) throw new ChangedError(`network ${n.Id}`);
      out.networks.add(n.Id);
    }
    for (const v of (await list(`/volumes?filters=${q}`)).Volumes ?? []) {
      if (Date.parse(v.CreatedAt) > since) throw new ChangedError(`volume ${v.Name}`);
      out.volumes.add(v.Name);
    }
    for (const i of await list(`/images/json?filters=${q}`)) {
      if (i.Created * 1000 > since) throw new ChangedError(`image ${i.Id}`);
      out.images.add(i.Id);
    }
  }
  return out;
}

/** Removes each resource, retrying failures once a second; a 404 counts as removed. */
async function removeAll(cfg, kind, ids, pathOf) {
  let todo = [...ids];
  let removed = 0;
  for (let attempt = 1; todo.length && attempt <= cfg.removeRetries; attempt++) {
    const failed = [];
    for (const id of todo) {
      const r = await request(cfg, 'DELETE', pathOf(id)).catch((e) => ({ status: 0, text: e.message }));
      if (r.status === 404) continue;
      if (r.status >= 200 && r.status < 300) {
        removed++;
        continue;
      }
      log('remove failed', { resource: kind, id, attempt, status: r.status, error: r.text.trim() });
      failed.push(id);
    }
    todo = failed;
    if (todo.length && attempt < cfg.removeRetries) await new Promise((r) => setTimeout(r, 1000));
  }
  return { removed, left: todo.length };
}

export async function main(cfg = loadConfig()) {
  const ping = await request(cfg, 'GET', '/_ping');
  if (ping.status !== 200) throw new Error(`ping ${cfg.socketPath}: ${ping.status} ${ping.text}`);
  log('starting', { connection_timeout: cfg.connectionTimeout, reconnection_timeout: cfg.reconnectionTimeout, port: cfg.port });

  const filters = new Map();
  let clients = 0;
  let timer;
  // Why a prune check is due (a timeout, a signal), or undefined; `wake` ends the loop's wait.
  let due;
  let wake = () => {};
  const fire = (why) => {
    due = why;
    wake();
  };
  const arm = (ms, why) => {
    clearTimeout(timer);
    timer = setTimeout(() => fire(why), ms);
  };

  const server = net.createServer((conn) => {
    clients++;
    clearTimeout(timer);
    const addr = `${conn.remoteAddress}:${conn.remotePort}`;
    log('client connected', { address: addr, clients });
    let pending = '';
    conn.setEncoding('utf8');
    conn.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!line) continue;
        const { filters: f, key } = parseFilterLine(line);
        if (!filters.has(key)) {
          filters.set(key, f);
          log('adding filter', { filter: f });
        }
        conn.write('ACK\n');
      }
    });
    // A reset from a client that died counts as its leaving, as a close does.
    conn.on('error', (e) => cfg.verbose && log('client error', { address: addr, error: e.message }));
    conn.on('close', () => {
      clients--;
      log('client disconnected', { address: addr, clients });
      if (clients === 0) arm(cfg.reconnectionTimeout, 'reconnection timeout');
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, resolve);
  });
  // testcontainers waits for this line (/.*Started.*/) before it connects.
  log('Started', { address: server.address() });
  arm(cfg.connectionTimeout, 'connection timeout');
  for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => fire(sig));

  for (;;) {
    if (due === undefined) await new Promise((r) => (wake = r));
    const why = due;
    due = undefined;
    log('prune check', { reason: why, clients });
    try {
      const found = await affected(cfg, [...filters.values()], Date.now() - 1000);
      server.close();
      const c = await removeAll(cfg, 'container', found.containers, (id) => `/containers/${id}?force=1&v=1`);
      const n = await removeAll(cfg, 'network', found.networks, (id) => `/networks/${id}`);
      const v = await removeAll(cfg, 'volume', found.volumes, (id) => `/volumes/${encodeURIComponent(id)}?force=1`);
      const i = await removeAll(cfg, 'image', found.images, (id) => `/images/${id}`);
      log('removed', { containers: c.removed, networks: n.removed, volumes: v.removed, images: i.removed });
      const left = c.left + n.left + v.left + i.left;
      return left === 0 ? 0 : 1;
    } catch (e) {
      if (!(e instanceof ChangedError)) throw e;
      log('change detected, waiting again', { resource: e.message });
      if (clients === 0) arm(cfg.reconnectionTimeout, 'reconnection timeout');
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      log('fatal', { error: e.message });
      process.exit(1);
    },
  );
}
