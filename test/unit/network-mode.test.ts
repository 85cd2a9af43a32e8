/** lib/network: the network modes of run --network and the API's NetworkMode, and what each hands the runtime. */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { dockerNetworkMode, netNamespaceFor, networkModeOf, parseNetworkMode } from '../../lib/network/index.js';

test('run --network: none by default, host, and nothing else', (t) => {
  t.is(parseNetworkMode(undefined), 'none');
  t.is(parseNetworkMode('none'), 'none');
  t.is(parseNetworkMode('host'), 'host');
  const e = t.throws(() => parseNetworkMode('bridge'), { instanceOf: ValidationError });
  t.is(e.field, 'network');
  t.regex(e.message, /^network bridge: nsbox supports none/);
});

test("docker's NetworkMode: default and bridge are none until bridge exists; an unknown one is a 400", (t) => {
  for (const m of [undefined, null, '', 'default', 'bridge', 'none']) t.is(dockerNetworkMode(m), 'none', String(m));
  t.is(dockerNetworkMode('host'), 'host');
  const e = t.throws(() => dockerNetworkMode('mynet'), { instanceOf: ValidationError });
  t.regex(e.message, /^network mynet not found/);
});

test('what the runtime gets, and back: none is a namespace of its own, host is the host\'s', (t) => {
  t.deepEqual(netNamespaceFor('none'), { net: true });
  t.deepEqual(netNamespaceFor('host'), { net: false });
  t.is(networkModeOf(netNamespaceFor('none')), 'none');
  t.is(networkModeOf(netNamespaceFor('host')), 'host');
  // Options that never named the network (the SDK's default) are none.
  t.is(networkModeOf(undefined), 'none');
  t.is(networkModeOf({}), 'none');
});
