/**
 * login/logout against a real htpasswd docker-registry on 127.0.0.1: the credentials checked, then
 * kept in docker's config.json (or a `docker-credential-*` helper) where push and pull find them;
 * `docker login` through `nsbox serve` (POST /auth), then `docker push` with what the docker CLI keeps.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Image } from '../../lib/image/image.js';
import { rootfs, skipIf } from './_helpers.js';
import { apiUnavailable, bin, cleanup, docker, startServe } from './api-fixture.js';
import { htpasswdUnavailable, makeHtpasswd, registryUnavailable, startRegistry, type Registry } from '../fixtures/registry.js';

interface Ctx {
  dir: string;
  root: string;
  reg: Registry;
  tar: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable() ?? htpasswdUnavailable();
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-login-'));
  t.context.root = join(t.context.dir, 'root');
  t.context.reg = await startRegistry({ htpasswd: makeHtpasswd(t.context.dir, 'nsbox', 'nsbox-test') });
  t.context.tar = join(t.context.dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs(), '-cf', t.context.tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  await Image.import(t.context.tar, { name: `${t.context.reg.host}/app:1`, root: t.context.root });
});
test.after.always(async (t) => {
  await t.context.reg?.stop();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

function cli(t: { context: Ctx }, config: string, args: string[], input = '', extraPath?: string) {
  return spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    input,
    env: { ...process.env, NSBOX_ROOT: t.context.root, DOCKER_CONFIG: config, ...(extraPath ? { PATH: `${extraPath}:${process.env['PATH']}` } : {}) },
  });
}

rtest('nsbox login checks and stores the credentials in config.json; push uses them; logout removes them', async (t) => {
  const { reg } = t.context;
  const config = join(t.context.dir, 'cfg-file');
  const wrong = cli(t, config, ['login', '-u', 'nsbox', '--password-stdin', reg.host], 'wrong\n');
  t.is(wrong.status, 125);
  t.regex(wrong.stderr, /unauthorized: check the credentials/);
  t.false(existsSync(join(config, 'config.json')), 'a refused login writes nothing');

  const noAuth = cli(t, config, ['push', `${reg.host}/app:1`]);
  t.is(noAuth.status, 125);
  t.regex(noAuth.stderr, /needs credentials and none were found/);

  const ok = cli(t, config, ['login', '--username', 'nsbox', '--password-stdin', reg.host], 'nsbox-test\n');
  t.is(ok.status, 0, ok.stderr);
  t.is(ok.stdout, 'Login Succeeded\n');
  const file = join(config, 'config.json');
  t.is(statSync(file).mode & 0o777, 0o600);
  const stored = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
  t.is(Buffer.from(stored.auths[reg.host]!.auth, 'base64').toString(), 'nsbox:nsbox-test');

  const pushed = cli(t, config, ['push', `${reg.host}/app:1`]);
  t.is(pushed.status, 0, pushed.stderr);
  const pulled = cli(t, config, ['pull', `${reg.host}/app:1`]);
  t.is(pulled.status, 0, pulled.stderr);

  const out = cli(t, config, ['logout', reg.host]);
  t.is(out.stdout, `Removing login credentials for ${reg.host}\n`);
  t.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { auths: object }).auths, {});
  t.is(cli(t, config, ['logout', reg.host]).stdout, `Not logged in to ${reg.host}\n`);
  t.is(cli(t, config, ['push', `${reg.host}/app:1`]).status, 125, 'after logout the push has no credentials again');
});

rtest('credHelpers: login hands the secret to docker-credential-<name>, push gets it back from there, logout erases it', async (t) => {
  const { reg, dir } = t.context;
  const config = join(dir, 'cfg-helper');
  const helperDir = join(dir, 'helper');
  const binDir = join(dir, 'helper-bin');
  mkdirSync(config);
  mkdirSync(helperDir);
  mkdirSync(binDir);
  // A credential helper speaking docker's protocol, keeping one secret in a file.
  const helper = join(binDir, 'docker-credential-nsboxtest');
  writeFileSync(helper, `#!/bin/sh
d=${helperDir}
echo "$1" >> "$d/calls"
case "$1" in
  store) cat > "$d/secret.json" ;;
  get) read -r server; if [ -f "$d/secret.json" ] && grep -q "\\"ServerURL\\":\\"$server\\"" "$d/secret.json"; then cat "$d/secret.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read -r server; if [ -f "$d/secret.json" ]; then rm "$d/secret.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
`);
  chmodSync(helper, 0o755);
  writeFileSync(join(config, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'nsboxtest' }, psFormat: 'kept' }));

  const ok = cli(t, config, ['login', '-u', 'nsbox', '--password-stdin', reg.host], 'nsbox-test', binDir);
  t.is(ok.status, 0, ok.stderr);
  t.notRegex(ok.stderr, /stored unencrypted/);
  const secret = JSON.parse(readFileSync(join(helperDir, 'secret.json'), 'utf8')) as { ServerURL: string; Username: string; Secret: string };
  t.deepEqual(secret, { ServerURL: reg.host, Username: 'nsbox', Secret: 'nsbox-test' });
  const file = JSON.parse(readFileSync(join(config, 'config.json'), 'utf8')) as { psFormat: string; auths?: Record<string, { auth?: string }> };
  t.is(file.psFormat, 'kept', 'other keys stay');
  t.falsy(file.auths?.[reg.host]?.auth, 'no secret in the file');

  const pushed = cli(t, config, ['push', `${reg.host}/app:1`], '', binDir);
  t.is(pushed.status, 0, pushed.stderr);
  t.true(readFileSync(join(helperDir, 'calls'), 'utf8').split('\n').includes('get'));

  t.is(cli(t, config, ['logout', reg.host], '', binDir).status, 0);
  t.false(existsSync(join(helperDir, 'secret.json')));
});

const dtest = skipIf(reason ?? apiUnavailable({ docker: true }), test.serial);
dtest('docker login through nsbox serve (POST /auth), then docker push with the credentials the docker CLI keeps', async (t) => {
  const { reg } = t.context;
  const serve = await startServe();
  t.teardown(() => cleanup(serve));
  const bad = docker(serve, ['login', '-u', 'nsbox', '--password-stdin', reg.host], { input: 'nope\n' });
  t.not(bad.status, 0);
  t.regex(bad.stderr, /unauthorized/);
  const ok = docker(serve, ['login', '-u', 'nsbox', '--password-stdin', reg.host], { input: 'nsbox-test\n' });
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /Login Succeeded/);
  t.is(docker(serve, ['import', t.context.tar, `${reg.host}/viadocker:1`]).status, 0);
  const pushed = docker(serve, ['push', `${reg.host}/viadocker:1`]);
  t.is(pushed.status, 0, pushed.stderr);
  t.regex(pushed.stdout, /1: digest: sha256:[0-9a-f]{64}/);
});

const ptest = skipIf(reason ?? (spawnSync('script', ['--version']).status === 0 ? undefined : 'missing script (util-linux)'), test.serial);
ptest('on a terminal, nsbox login asks for the username and the password (not echoed); without one, it says which flags to give', async (t) => {
  const { reg } = t.context;
  const config = join(t.context.dir, 'cfg-prompt');
  // script(1) gives the command a pseudo-terminal; the answers go in once each prompt is shown
  const child = spawn('script', ['-qec', `${process.execPath} ${bin} login ${reg.host}`, '/dev/null'], {
    env: { ...process.env, NSBOX_ROOT: t.context.root, DOCKER_CONFIG: config },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  const seen = (what: string) => new Promise<void>((resolve) => {
    const check = () => out.includes(what) && (child.stdout.off('data', check), resolve());
    child.stdout.on('data', check);
    check();
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await seen('Username: ');
  child.stdin.write('nsbox\r');
  await seen('Password: ');
  child.stdin.write('nsbox-test\r');
  await seen('Login Succeeded');
  child.stdin.end();
  const code = await new Promise<number | null>((r) => child.once('close', r));
  t.is(code, 0, out);
  t.false(out.includes('nsbox-test'), `the password was not echoed: ${JSON.stringify(out)}`);
  const stored = JSON.parse(readFileSync(join(config, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
  t.is(Buffer.from(stored.auths[reg.host]!.auth, 'base64').toString(), 'nsbox:nsbox-test');

  const piped = cli(t, join(t.context.dir, 'cfg-piped'), ['login', reg.host]);
  t.is(piped.status, 125);
  t.regex(piped.stderr, /needs --username and --password-stdin \(or --password\) when its input is not a terminal/);
});
