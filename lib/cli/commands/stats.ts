/**
 * nsbox stats [--no-stream] [--format json] [-a] [CONTAINER...]: CPU, memory, block I/O and pids of
 * running containers from their cgroups, network I/O from their own interfaces; live (redrawn every
 * second) unless --no-stream.
 */
import { totalmem } from 'node:os';
import type { CgroupStats } from '../../cgroup/driver.js';
import type { ContainerRecord } from '../../engine/records.js';
import { flag, parseArgs, value } from '../args.js';
import { humanSize, shortId, table } from '../output.js';
import { openEngine } from '../open-engine.js';
import { InvalidStateError, NotFoundError } from '../../errors.js';
import { interfaceStats } from '../../network/interface-stats.js';

/** A container that stopped or went away between the listing and its sample has no figures (docker shows --). */
const notRunning = (err: unknown): undefined => {
  if (err instanceof InvalidStateError || err instanceof NotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw err;
};

const binSize = (bytes: number) => humanSize(bytes, { binary: true });

interface Row {
  ID: string;
  Name: string;
  CPUPerc: string;
  MemUsage: string;
  MemPerc: string;
  NetIO: string;
  BlockIO: string;
  PIDs: string;
}

/** rx / tx bytes summed over the interfaces of the container's own namespace (none in host mode). */
function netIO(r: ContainerRecord, pid: number | undefined): string {
  const host = r.network?.options.mode === 'host' || r.options.namespaces?.net === false;
  const ifs = pid && !host ? Object.values(interfaceStats(pid) ?? {}) : [];
  const sum = (k: 'rx_bytes' | 'tx_bytes') => ifs.reduce((n, i) => n + i[k], 0);
  return `${humanSize(sum('rx_bytes'))} / ${humanSize(sum('tx_bytes'))}`;
}

function row(r: ContainerRecord, a: CgroupStats | undefined, b: CgroupStats | undefined, wallUsec: number, pid: number | undefined): Row {
  const cpu = a?.cpu && b?.cpu && wallUsec > 0 ? ((b.cpu.usageUsec - a.cpu.usageUsec) / wallUsec) * 100 : 0;
  const mem = b?.memory?.current ?? 0;
  const limit = b?.memory?.limit ?? totalmem();
  return {
    ID: shortId(r.id),
    Name: r.name,
    CPUPerc: `${cpu.toFixed(2)}%`,
    MemUsage: `${binSize(mem)} / ${binSize(limit)}`,
    MemPerc: `${limit ? ((mem / limit) * 100).toFixed(2) : '0.00'}%`,
    NetIO: netIO(r, b ? pid : undefined),
    BlockIO: `${humanSize(b?.io?.readBytes ?? 0)} / ${humanSize(b?.io?.writeBytes ?? 0)}`,
    PIDs: String(b?.pids?.current ?? 0),
  };
}

export default async function stats(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['no-stream'], kind: 'bool' },
    { names: ['all', 'a'], kind: 'bool' },
    { names: ['format'], kind: 'value' },
    { names: ['no-trunc'], kind: 'bool' },
  ], { stopAtPositional: false });
  const engine = await openEngine();
  const json = value(p, 'format') === 'json';
  const pick = async () => (p.positional.length ? Promise.all(p.positional.map((ref) => engine.get(ref))) : engine.list({ all: flag(p, 'all') }));
  const sample = async (records: ContainerRecord[]) => new Map(await Promise.all(records.map(async (r) => [r.id, await engine.stats(r.id).catch(notRunning)] as const)));
  let records = await pick();
  let before = await sample(records);
  let t0 = process.hrtime.bigint();
  for (;;) {
    await new Promise((r) => setTimeout(r, flag(p, 'no-stream') ? 500 : 1000));
    const after = await sample(records);
    const wall = Number(process.hrtime.bigint() - t0) / 1000;
    const rows = records.map((r) => row(r, before.get(r.id), after.get(r.id), wall, engine.pidOf(r)));
    const out = json
      ? rows.map((x) => `${JSON.stringify(x)}\n`).join('')
      : table(['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'], rows.map((x) => [x.ID, x.Name, x.CPUPerc, x.MemUsage, x.MemPerc, x.NetIO, x.BlockIO, x.PIDs]));
    if (flag(p, 'no-stream')) {
      process.stdout.write(out);
      return 0;
    }
    process.stdout.write(`${process.stdout.isTTY && !json ? '\x1b[2J\x1b[H' : ''}${out}`);
    if (!p.positional.length) {
      const next = await pick();
      if (next.map((r) => r.id).join() !== records.map((r) => r.id).join()) records = next;
    }
    before = await sample(records);
    t0 = process.hrtime.bigint();
  }
}
