/** The router: docker's version prefixes, one-segment and greedy parameters, 404 for the rest. */
import test from 'ava';
import { ApiError } from '../../lib/api/api-error.js';
import { filtersParam, boolParam } from '../../lib/api/query.js';
import { Router, stripVersion } from '../../lib/api/router.js';

const noop = async () => {};

test('/v1.NN prefixes up to 1.41 are taken off; newer ones are refused as docker refuses them', (t) => {
  t.deepEqual(stripVersion('/v1.41/containers/json'), { path: '/containers/json', version: '1.41' });
  t.deepEqual(stripVersion('/v1.24/_ping'), { path: '/_ping', version: '1.24' });
  t.deepEqual(stripVersion('/containers/json'), { path: '/containers/json' });
  t.throws(() => stripVersion('/v1.50/version'), { instanceOf: ApiError, message: 'client version 1.50 is too new. Maximum supported API version is 1.41' });
  t.throws(() => stripVersion('/v1.2/version'), { message: /too old/ });
});

test('parameters: one segment, or the rest of the path for image names', (t) => {
  const r = new Router().add('GET', '/containers/:id/json', noop).add('GET', '/images/*name/json', noop).add('DELETE', '/images/*name', noop);
  t.deepEqual(r.match('GET', '/containers/web/json').params, { id: 'web' });
  t.deepEqual(r.match('GET', '/images/127.0.0.1:5000/team/app:1/json').params, { name: '127.0.0.1:5000/team/app:1' });
  t.deepEqual(r.match('DELETE', '/images/busybox%3Alatest').params, { name: 'busybox:latest' });
  t.is(r.match('HEAD', '/containers/x/json').pattern, '/containers/:id/json', 'HEAD is answered by GET');
  t.throws(() => r.match('POST', '/containers/web/json'), { instanceOf: ApiError, message: 'page not found' });
  t.throws(() => r.match('GET', '/nope'), { message: 'page not found' });
});

test('query: docker\'s booleans and both forms of filters', (t) => {
  const q = new URLSearchParams('all=1&force=false&stream=0&x=&filters=' + encodeURIComponent('{"name":{"web":true,"db":false},"status":["exited"]}'));
  t.true(boolParam(q, 'all'));
  t.false(boolParam(q, 'force'));
  t.false(boolParam(q, 'stream', true));
  t.true(boolParam(q, 'missing', true));
  t.deepEqual([...filtersParam(q)], [['name', ['web']], ['status', ['exited']]]);
  t.throws(() => filtersParam(new URLSearchParams('filters={bad')), { message: /invalid filter/ });
});
