import test from 'ava';
import { matchesLabels } from '../../lib/network/network-filters.js';

test('label filters: every key present and every key=value equal, as docker matches them', (t) => {
  const labels = { app: 'web', tier: 'front', empty: '' };
  t.true(matchesLabels(labels, []));
  t.true(matchesLabels(labels, ['app']));
  t.true(matchesLabels(labels, ['app=web', 'tier']));
  t.true(matchesLabels(labels, ['empty=']));
  t.false(matchesLabels(labels, ['app=db']));
  t.false(matchesLabels(labels, ['app=web', 'owner']));
  t.false(matchesLabels(labels, ['app=']));
  t.false(matchesLabels(undefined, ['app']));
  t.true(matchesLabels(null, []));
});

test('label filters look at the labels themselves, never at what every object inherits', (t) => {
  t.false(matchesLabels({}, ['constructor']));
  t.false(matchesLabels({ app: 'web' }, ['toString']));
  t.false(matchesLabels({}, ['__proto__']));
});
