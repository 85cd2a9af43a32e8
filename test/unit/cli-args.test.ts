/** docker-style argument parsing for the CLI: grouped short flags, repeats, `=` values, `--help`. */
import test from 'ava';
import { describeFlags, flag, HelpRequested, parseArgs, value, values, type FlagSpec } from '../../lib/cli/args.js';
import { ValidationError } from '../../lib/errors.js';

const specs: FlagSpec[] = [
  { names: ['interactive', 'i'], kind: 'bool' },
  { names: ['tty', 't'], kind: 'bool' },
  { names: ['env', 'e'], kind: 'list' },
  { names: ['name'], kind: 'value' },
];

test('grouped short flags, repeated lists, --name=v and --name v; the first positional ends the options', (t) => {
  const p = parseArgs(['-it', '-e', 'A=1', '-eB=2', '--name=web', 'busybox', 'sh', '-c', 'echo --help'], specs);
  t.true(flag(p, 'interactive'));
  t.true(flag(p, 'tty'));
  t.deepEqual(values(p, 'env'), ['A=1', 'B=2']);
  t.is(value(p, 'name'), 'web');
  t.deepEqual(p.positional, ['busybox', 'sh', '-c', 'echo --help']);
  t.is(value(parseArgs(['--name', 'db', 'x'], specs), 'name'), 'db');
});

test('unknown flags and missing values are ValidationErrors naming the flag', (t) => {
  t.throws(() => parseArgs(['--nope'], specs), { instanceOf: ValidationError, message: 'unknown flag: --nope' });
  t.throws(() => parseArgs(['-x'], specs), { instanceOf: ValidationError, message: /unknown shorthand flag: 'x'/ });
  t.throws(() => parseArgs(['--name'], specs), { instanceOf: ValidationError, message: 'flag needs an argument: --name' });
});

test('--help before the first positional asks for the usage, listed as docker lists flags', (t) => {
  const e = t.throws(() => parseArgs(['-i', '--help'], specs), { instanceOf: HelpRequested });
  t.is(e?.specs, specs);
  t.deepEqual(describeFlags(specs), ['  -e, --env list', '      --help', '  -i, --interactive', '      --name string', '  -t, --tty'].map((l) => l.slice(2)));
});
