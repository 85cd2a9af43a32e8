/**
 * docker's stats `networks`: the byte, packet, error and drop counters of each interface in a
 * container's network namespace, read from /proc/<pid>/net/dev of a process in it (lo left out, as
 * docker leaves it out).
 */
import { readFileSync } from 'node:fs';
import { isCode } from '../errors.js';

export interface InterfaceStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/** /proc/net/dev's text → counters per interface (lo left out). */
export function parseNetDev(text: string): Record<string, InterfaceStats> {
  const out: Record<string, InterfaceStats> = {};
  // Two header lines, then "  eth0: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes tx_packets errs drop ..."
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (name === 'lo' || f.length < 12) continue;
    out[name] = { rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, rx_dropped: f[3]!, tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]!, tx_dropped: f[11]! };
  }
  return out;
}

/** The counters of the namespace `pid` is in; undefined when the process is gone. */
export function interfaceStats(pid: number): Record<string, InterfaceStats> | undefined {
  try {
    return parseNetDev(readFileSync(`/proc/${pid}/net/dev`, 'utf8'));
  } catch (err) {
    // ENOENT/ESRCH: the process has exited since its pid was read
    if (isCode(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
}
