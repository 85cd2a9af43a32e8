/** docker's multiplexed stream framing: encoded as docker writes it, decoded whatever the chunking. */
import test from 'ava';
import { MuxDecoder, muxFrame } from '../../lib/api/mux-frame.js';

test('a frame is [stream, 0, 0, 0, length BE32] + payload', (t) => {
  const f = muxFrame(2, Buffer.from('oops\n'));
  t.deepEqual([...f.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 5]);
  t.is(f.subarray(8).toString(), 'oops\n');
  const big = muxFrame(1, Buffer.alloc(70_000, 0x61));
  t.is(big.readUInt32BE(4), 70_000);
  t.is(big.length, 70_008);
});

test('an empty payload gives no frame (a zero-length frame reads as EOF to some clients)', (t) => {
  t.is(muxFrame(1, Buffer.alloc(0)).length, 0);
});

test('the decoder splits frames across any chunk boundaries', (t) => {
  const stream = Buffer.concat([muxFrame(1, Buffer.from('hello ')), muxFrame(2, Buffer.from('err')), muxFrame(1, Buffer.from('world\n'))]);
  for (const size of [1, 3, 7, 8, 9, stream.length]) {
    const d = new MuxDecoder();
    const out: string[] = [];
    for (let i = 0; i < stream.length; i += size) for (const c of d.push(stream.subarray(i, i + size))) out.push(`${c.stream}:${c.payload.toString()}`);
    t.deepEqual(out, ['1:hello ', '2:err', '1:world\n'], `chunks of ${size}`);
    t.is(d.pending, 0);
  }
});

test('the decoder refuses bytes that are no frame header', (t) => {
  t.throws(() => new MuxDecoder().push(Buffer.from('HTTP/1.1 200 OK\r\n')), { message: /not a multiplexed stream/ });
});
