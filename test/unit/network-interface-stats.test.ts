/** The stats `networks` counters from /proc/<pid>/net/dev text, and this process's own namespace. */
import test from 'ava';
import { interfaceStats, parseNetDev } from '../../lib/network/interface-stats.js';

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    9126      71    1    2    0     0          0         0     5016      40    3    4    0     0       0          0
  eth1: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`;

test('parseNetDev: each interface but lo, docker names and fields', (t) => {
  t.deepEqual(parseNetDev(NET_DEV), {
    eth0: { rx_bytes: 9126, rx_packets: 71, rx_errors: 1, rx_dropped: 2, tx_bytes: 5016, tx_packets: 40, tx_errors: 3, tx_dropped: 4 },
    eth1: { rx_bytes: 0, rx_packets: 0, rx_errors: 0, rx_dropped: 0, tx_bytes: 0, tx_packets: 0, tx_errors: 0, tx_dropped: 0 },
  });
  t.deepEqual(parseNetDev(''), {});
});

test('interfaceStats: a live process reads its namespace, a gone one is undefined', (t) => {
  t.is(typeof interfaceStats(process.pid), 'object');
  t.false('lo' in interfaceStats(process.pid)!);
  t.is(interfaceStats(2 ** 22 + 1), undefined);
});
