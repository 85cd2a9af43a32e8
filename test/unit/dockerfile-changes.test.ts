/** applyChanges: the Dockerfile instructions of `docker import --change`, in their exec and shell forms. */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { applyChanges } from '../../lib/build/dockerfile/changes.js';

test('CMD and ENTRYPOINT: exec form as given, shell form under /bin/sh -c; a new entrypoint drops the command', (t) => {
  t.deepEqual(applyChanges({}, ['CMD ["sh", "-c", "echo hi"]']).Cmd, ['sh', '-c', 'echo hi']);
  t.deepEqual(applyChanges({}, ['cmd echo $HOME']).Cmd, ['/bin/sh', '-c', 'echo $HOME'], 'lower case, as the Dockerfile allows');
  t.deepEqual(applyChanges({}, ['CMD [not json']).Cmd, ['/bin/sh', '-c', '[not json']);
  const both = applyChanges({}, ['CMD ["x"]', 'ENTRYPOINT ["/bin/cat"]']);
  t.deepEqual(both.Entrypoint, ['/bin/cat']);
  t.is(both.Cmd, null);
  t.deepEqual(applyChanges({}, ['ENTRYPOINT ["/bin/cat"]', 'CMD ["/etc/hostname"]']).Cmd, ['/etc/hostname']);
});

test('ENV and LABEL: KEY=value pairs with quotes, the legacy `KEY value`, later values win', (t) => {
  const cfg = applyChanges({ Env: ['PATH=/bin', 'A=0'] }, ['ENV A=1 B="two words" C=a\\ b', 'ENV D the rest of it']);
  t.deepEqual(cfg.Env, ['PATH=/bin', 'A=1', 'B=two words', 'C=a b', 'D=the rest of it']);
  t.deepEqual(applyChanges({}, ['LABEL a=1', "LABEL b='x y' a=2"]).Labels, { a: '2', b: 'x y' });
  t.throws(() => applyChanges({}, ['ENV =x']), { instanceOf: ValidationError, message: /"=x" is not KEY=value/ });
});

test('EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ONBUILD', (t) => {
  const cfg = applyChanges({}, ['EXPOSE 80 53/udp 8000-8002', 'VOLUME ["/data", "/logs"]', 'VOLUME /cache', 'WORKDIR /app', 'WORKDIR src',
    'USER 1000:1000', 'STOPSIGNAL SIGINT', 'ONBUILD RUN make']);
  t.deepEqual(Object.keys(cfg.ExposedPorts ?? {}), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp', '8002/tcp']);
  t.deepEqual(Object.keys(cfg.Volumes ?? {}), ['/data', '/logs', '/cache']);
  t.is(cfg.WorkingDir, '/app/src', 'relative to the one before');
  t.is(cfg.User, '1000:1000');
  t.is(cfg.StopSignal, 'SIGINT');
  t.deepEqual(cfg.OnBuild, ['RUN make']);
  t.throws(() => applyChanges({}, ['EXPOSE 70000']), { message: /not a port range/ });
  t.throws(() => applyChanges({}, ['EXPOSE http']), { message: /is not a port/ });
});

test('what a change cannot be: another instruction, no argument, not an instruction; the input is not modified', (t) => {
  t.throws(() => applyChanges({}, ['RUN make']), { instanceOf: ValidationError, message: /RUN is not a valid change command/ });
  t.throws(() => applyChanges({}, ['CMD']), { message: /CMD requires an argument/ });
  t.throws(() => applyChanges({}, ['["x"]']), { message: /expected an instruction/ });
  const before = { Env: ['A=1'] };
  applyChanges(before, ['ENV A=2']);
  t.deepEqual(before, { Env: ['A=1'] });
});
