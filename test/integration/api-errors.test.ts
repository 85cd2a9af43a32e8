/**
 * Bad input to `nsbox serve`: each answer has docker's status code and `{"message"}` (in docker's
 * words where clients look at them), and none of it hurts the server.
 */
import net from 'node:net';
import anyTest, { type TestFn } from 'ava';
import { rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry } from '../fixtures/registry.js';
import { apiUnavailable, cleanup, request, startServe, type Serve } from './api-fixture.js';
import { until } from '../fixtures/until.js';

interface Ctx extends ImageRegistry {
  serve: Serve;
}
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable();
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  Object.assign(t.context, await startImageRegistry(rootfs()));
  t.context.serve = await startServe();
  const pull = await request(t.context.serve.socket, 'POST', `/v1.41/images/create?fromImage=${encodeURIComponent(`${t.context.reg.host}/busybox`)}&tag=1`);
  if (pull.status !== 200 || /"error"/.test(pull.body)) throw new Error(`pull failed: ${pull.body}`);
});
test.after.always(async (t) => {
  await cleanup(t.context.serve);
  await t.context.stop?.();
});

const api = (t: { context: Ctx }, method: string, path: string, body?: unknown) => request(t.context.serve.socket, method, `/v1.41${path}`, body);
const img = (t: { context: Ctx }) => `${t.context.reg.host}/busybox:1`;

async function alive(t: { context: Ctx }): Promise<boolean> {
  return (await request(t.context.serve.socket, 'GET', '/_ping')).body === 'OK';
}

rtest('malformed and invalid bodies are 400s with a message', async (t) => {
  const bad = await api(t, 'POST', '/containers/create', '{"Image": "busybox", ');
  t.is(bad.status, 400);
  t.regex(bad.json.message, /^invalid JSON in the container config body: /);
  const noImage = await api(t, 'POST', '/containers/create', { Cmd: ['sh'] });
  t.is(noImage.status, 400);
  t.regex(noImage.json.message, /Image: an image is required/);
  const wrongType = await api(t, 'POST', '/containers/create', { Image: 'x', Env: 'A=1' });
  t.is(wrongType.status, 400);
  t.regex(wrongType.json.message, /Env/);
  const notObject = await api(t, 'POST', '/containers/create', '[1,2]');
  t.is(notObject.status, 400);
  const badName = await request(t.context.serve.socket, 'POST', '/containers/create?name=-bad', { Image: img(t) });
  t.is(badName.status, 400);
  t.is(badName.json.message, 'Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed');
  const filters = await api(t, 'GET', '/containers/json?filters=%7Bnope');
  t.is(filters.status, 400);
  t.regex(filters.json.message, /invalid filter/);
  t.true(await alive(t));
});

rtest('unknown containers, images, execs and routes are 404s in docker\'s words', async (t) => {
  for (const [method, path] of [['GET', '/containers/nope/json'], ['POST', '/containers/nope/start'], ['POST', '/containers/nope/stop'], ['DELETE', '/containers/nope'], ['GET', '/containers/nope/logs?stdout=1'], ['POST', '/containers/nope/wait']] as const) {
    const r = await api(t, method, path);
    t.is(r.status, 404, `${method} ${path}`);
    t.deepEqual(r.json, { message: 'No such container: nope' });
  }
  const missing = await api(t, 'POST', '/containers/create', { Image: 'nope' });
  t.is(missing.status, 404);
  t.deepEqual(missing.json, { message: 'No such image: nope:latest' }, 'the 404 on which the docker CLI pulls');
  t.deepEqual((await api(t, 'GET', '/images/nope:1/json')).json, { message: 'No such image: nope:1' });
  t.is((await api(t, 'DELETE', '/images/nope:1')).status, 404);
  t.deepEqual((await api(t, 'GET', '/exec/abc/json')).json, { message: 'No such exec instance: abc' });
  const route = await api(t, 'GET', '/no/such/route');
  t.is(route.status, 404);
  t.deepEqual(route.json, { message: 'page not found' });
  const tooNew = await request(t.context.serve.socket, 'GET', '/v1.99/version');
  t.is(tooNew.status, 400);
  t.is(tooNew.json.message, 'client version 1.99 is too new. Maximum supported API version is 1.41');
});

rtest('conflicts are 409s: duplicate name, exec in a stopped container, rm of a running one; no-ops are 304s', async (t) => {
  const first = await request(t.context.serve.socket, 'POST', '/containers/create?name=dup', { Image: img(t), Cmd: ['sleep', '100'] });
  t.is(first.status, 201, first.body);
  const id: string = first.json.Id;
  const second = await request(t.context.serve.socket, 'POST', '/containers/create?name=dup', { Image: img(t), Cmd: ['true'] });
  t.is(second.status, 409);
  t.is(second.json.message, `Conflict. The container name "/dup" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`);

  const execCreated = await api(t, 'POST', '/containers/dup/exec', { Cmd: ['true'] });
  t.is(execCreated.status, 409);
  t.is(execCreated.json.message, `Container ${id} is not running`);
  t.is((await api(t, 'POST', '/containers/dup/stop')).status, 304, 'stop of a stopped container');
  t.is((await api(t, 'POST', '/containers/dup/kill')).status, 409);

  t.is((await api(t, 'POST', '/containers/dup/start')).status, 204);
  const again = await api(t, 'POST', '/containers/dup/start');
  t.is(again.status, 304);
  t.is(again.body, '');
  const noCmd = await api(t, 'POST', '/containers/dup/exec', { Cmd: [] });
  t.is(noCmd.status, 400);
  t.regex(noCmd.json.message, /No exec command specified/);
  const logs = await api(t, 'GET', '/containers/dup/logs');
  t.is(logs.status, 400);
  t.is(logs.json.message, 'Bad parameters: you must choose at least one stream');
  const rm = await api(t, 'DELETE', '/containers/dup');
  t.is(rm.status, 409);
  t.is(rm.json.message, `You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
  const exec = await api(t, 'POST', '/containers/dup/exec', { Cmd: ['true'] });
  t.is(exec.status, 201);
  await api(t, 'POST', `/exec/${exec.json.Id}/start`, { Detach: true });
  await until('the detached exec to end', async () => (await api(t, 'GET', `/exec/${exec.json.Id}/json`)).json.Running === false);
  const twice = await api(t, 'POST', `/exec/${exec.json.Id}/start`, { Detach: true });
  t.is(twice.status, 409);
  t.regex(twice.json.message, /has already run/);
  t.is((await api(t, 'DELETE', '/containers/dup?force=1')).status, 204);
  t.true(await alive(t));
});

rtest('bytes that are no HTTP get a 400 and the server goes on', async (t) => {
  const answer = await new Promise<string>((resolve) => {
    const s = net.createConnection(t.context.serve.socket);
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('close', () => resolve(data));
    s.on('error', () => resolve(data));
    s.write('\x00\x01 garbage \r\n\r\n');
  });
  t.regex(answer, /^HTTP\/1\.1 400 Bad Request/);
  t.true(await alive(t));
  t.notRegex(t.context.serve.log(), /"level":"error","msg":"unexpected error"/, 'no handler escaped its catch');
});
