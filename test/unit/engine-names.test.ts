import test from 'ava';
import { canonicalName, generateName, parseRestartPolicy } from '../../lib/engine/index.js';
import { ValidationError } from '../../lib/errors.js';

test('names: docker rule [a-zA-Z0-9][a-zA-Z0-9_.-]+, with or without the leading "/"', (t) => {
  t.is(canonicalName('web'), 'web');
  t.is(canonicalName('/web'), 'web');
  t.is(canonicalName('My.app_1-x'), 'My.app_1-x');
  t.is(canonicalName('0a'), '0a');
  for (const bad of ['', 'a', '/', '//web', '_web', '-web', '.web', 'we b', 'web/x', 'wéb', 'web\n']) {
    const err = t.throws(() => canonicalName(bad), { instanceOf: ValidationError });
    t.is(err.message, `Invalid container name (${bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    t.is(err.field, 'name');
  }
});

test('generated names: adjective_surname, valid, varied, never one already taken', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const n = generateName();
    t.regex(n, /^[a-z]+_[a-z]+$/);
    t.is(canonicalName(n), n);
    seen.add(n);
  }
  t.true(seen.size > 150, `${seen.size} distinct names in 300`);
  // Every plain pair taken: a number is appended, and the loop still ends.
  const n = generateName((x) => !/\d$/.test(x));
  t.regex(n, /^[a-z]+_[a-z]+\d+$/);
  // Deterministic with an injected random source.
  t.is(generateName(undefined, () => 0), generateName(undefined, () => 0));
  t.not(generateName(undefined, () => 0), generateName(undefined, () => 0.999));
});

test('restart policies as docker run --restart takes them', (t) => {
  t.deepEqual(parseRestartPolicy('no'), { name: 'no' });
  t.deepEqual(parseRestartPolicy('always'), { name: 'always' });
  t.deepEqual(parseRestartPolicy('unless-stopped'), { name: 'unless-stopped' });
  t.deepEqual(parseRestartPolicy('on-failure'), { name: 'on-failure' });
  t.deepEqual(parseRestartPolicy('on-failure:5'), { name: 'on-failure', maximumRetryCount: 5 });
  for (const bad of ['', 'sometimes', 'always:3', 'on-failure:x', 'on-failure:-1']) {
    t.throws(() => parseRestartPolicy(bad), { instanceOf: ValidationError, message: /invalid restart policy/ });
  }
});
