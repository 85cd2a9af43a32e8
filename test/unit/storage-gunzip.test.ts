/**
 * The addon's gunzip of layer blobs (cpp/layer-gunzip.cc through lib/storage/gunzip-native.ts): the
 * same bytes as Node's zlib and their sha256, whatever the chunking; several gzip members and zero
 * padding after the last, as Node's gunzip takes them; output handed over in bounded calls however
 * compressible the input; corrupt, truncated and garbage-trailed streams refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import test from 'ava';
import { native } from '../../lib/native.js';
import { LayerError } from '../../lib/storage/index.js';
import { nativeGunzip } from '../../lib/storage/gunzip-native.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function gunzip(bytes: Buffer, size = 65536): Promise<{ out: Buffer; digest: string; largest: number }> {
  const g = nativeGunzip(pieces(bytes, size), 'layer test');
  const out: Buffer[] = [];
  let largest = 0;
  for await (const c of g.chunks) {
    out.push(c);
    largest = Math.max(largest, c.length);
  }
  return { out: Buffer.concat(out), digest: g.digest(), largest };
}

// half random (incompressible), half text: both kinds of deflate blocks
const data = Buffer.concat([randomBytes(700_000), Buffer.from('a line of a config file\n'.repeat(60_000))]);

test(`the bytes and the sha256 of Node's gunzip, fed in any chunking (backend ${native.gunzipBackend})`, async (t) => {
  const gz = gzipSync(data);
  for (const size of [7, 977, 65536, gz.length]) {
    const { out, digest } = await gunzip(gz, size);
    t.true(out.equals(data), `chunks of ${size}`);
    t.is(digest, sha(data));
  }
});

test('several gzip members are one stream; zero padding after the last is ignored (as Node does)', async (t) => {
  const a = Buffer.from('first member\n');
  const b = Buffer.from('second member\n'.repeat(1000));
  const gz = Buffer.concat([gzipSync(a), gzipSync(b), Buffer.alloc(1024)]);
  const { out, digest } = await gunzip(gz, 100);
  t.true(out.equals(gunzipSync(gz)));
  t.true(out.equals(Buffer.concat([a, b])));
  t.is(digest, sha(out));
});

test('a very compressible stream comes out in bounded pieces (1 MiB chunks), not all at once', async (t) => {
  const zeros = Buffer.alloc(64 << 20);
  const { out, digest, largest } = await gunzip(gzipSync(zeros), 1 << 20);
  t.is(out.length, zeros.length);
  t.is(digest, sha(zeros));
  t.true(largest <= 1 << 20, `largest chunk ${largest}`);
});

test('truncated, corrupt and garbage-trailed streams are refused as LayerErrors naming gzip', async (t) => {
  const gz = gzipSync(data);
  const corrupt = Buffer.from(gz);
  for (let i = 200; i < 400; i++) corrupt[i] = corrupt[i]! ^ 0x5a;
  const trailing = Buffer.concat([gzipSync(Buffer.from('x')), Buffer.from('not gzip at all')]);
  const badCrc = Buffer.from(gzipSync(Buffer.from('checked by crc32\n'.repeat(100))));
  badCrc[badCrc.length - 6] = badCrc[badCrc.length - 6]! ^ 1;
  for (const [what, bytes] of [
    ['truncated', gz.subarray(0, gz.length - 100)],
    ['cut after the header', gz.subarray(0, 12)],
    ['corrupt', corrupt],
    ['garbage after the member', trailing],
    ['a wrong crc32', badCrc],
  ] as const) {
    const err = await t.throwsAsync(gunzip(bytes, 4096), { instanceOf: LayerError }, what);
    t.regex(err?.message ?? '', /gzip: .*corrupt or truncated layer/, what);
  }
});

test('a reader that stops early stops the inflate and closes its source', async (t) => {
  let closed = false;
  async function* source(): AsyncGenerator<Buffer> {
    try {
      yield* pieces(gzipSync(Buffer.alloc(32 << 20, 1)), 4096);
    } finally {
      closed = true;
    }
  }
  const g = nativeGunzip(source(), 'layer test');
  for await (const c of g.chunks) {
    t.true(c.length > 0);
    break;
  }
  t.true(closed, 'the source was returned');
  t.throws(() => g.digest(), { instanceOf: LayerError });
});
