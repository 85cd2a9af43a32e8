/** `-v` as docker reads it: anonymous volumes, named volumes, host binds, and what is refused. */
import test from 'ava';
import { parseVolumeSpec } from '../../lib/engine/volumes.js';
import { ValidationError } from '../../lib/errors.js';

test('/path is an anonymous volume; NAME:/path a named one; a path source a bind; modes', (t) => {
  t.deepEqual(parseVolumeSpec('/data'), { kind: 'volume', target: '/data', readonly: false });
  t.deepEqual(parseVolumeSpec('pgdata:/var/lib/pg'), { kind: 'volume', name: 'pgdata', target: '/var/lib/pg', readonly: false });
  t.deepEqual(parseVolumeSpec('cache.v2:/c:ro'), { kind: 'volume', name: 'cache.v2', target: '/c', readonly: true });
  t.deepEqual(parseVolumeSpec('/etc:/host-etc:ro,z'), { kind: 'bind', source: '/etc', target: '/host-etc', readonly: true });
  t.deepEqual(parseVolumeSpec('./src:/src'), { kind: 'bind', source: './src', target: '/src', readonly: false });
  t.deepEqual(parseVolumeSpec('~/x:/x:rw'), { kind: 'bind', source: '~/x', target: '/x', readonly: false });
});

test('relative mount points, bad names, unknown modes and extra colons are refused, naming the spec', (t) => {
  for (const [spec, why] of [
    ['data', /absolute path/],
    ['v:rel', /mount point must be an absolute path/],
    ['bad name:/x', /not a volume name/],
    ['v:/x:rx', /unknown option rx/],
    ['a:/b:ro:extra', /too many colons/],
  ] as const) {
    t.throws(() => parseVolumeSpec(spec), { instanceOf: ValidationError, message: new RegExp(`'${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'.*${why.source}`) });
  }
});
