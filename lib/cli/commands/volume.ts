/**
 * nsbox volume create [--label k=v] [NAME] | ls [-q] [--filter k=v] [--format json] | inspect NAME... | rm [-f] NAME... |
 * prune [-f] [-a]: docker's volume commands over the store's volumes (`<root>/volumes/NAME/_data`).
 */
import { createInterface } from 'node:readline/promises';
import { NotFoundError, ValidationError } from '../../errors.js';
import { filterMap, flag, parseArgs, value, values } from '../args.js';
import { filterVolumes, volumeLabels } from '../../engine/volume-ops.js';
import { table } from '../output.js';
import { openEngine } from '../open-engine.js';

export default async function volume(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const engine = await openEngine();
  switch (sub) {
    case 'create': {
      const p = parseArgs(rest, [{ names: ['label', 'l'], kind: 'list' }], { stopAtPositional: false });
      if (p.positional.length > 1) throw new ValidationError('"nsbox volume create" takes at most 1 argument.', 'name');
      const labels = Object.fromEntries(values(p, 'label').map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, ''])));
      process.stdout.write(`${(await engine.createVolume(p.positional[0], { labels })).name}\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const p = parseArgs(rest, [{ names: ['quiet', 'q'], kind: 'bool' }, { names: ['format'], kind: 'value' }, { names: ['filter', 'f'], kind: 'list' }]);
      const all = filterVolumes(await engine.volumes(), filterMap(values(p, 'filter')));
      if (flag(p, 'quiet')) process.stdout.write(all.map((v) => `${v.name}\n`).join(''));
      else if (value(p, 'format') === 'json') process.stdout.write(all.map((v) => `${JSON.stringify({ Driver: 'local', Name: v.name, Mountpoint: v.mountpoint, Scope: 'local' })}\n`).join(''));
      else process.stdout.write(table(['DRIVER', 'VOLUME NAME'], all.map((v) => ['local', v.name])));
      return 0;
    }
    case 'inspect': {
      const p = parseArgs(rest, [{ names: ['format', 'f'], kind: 'value' }], { stopAtPositional: false });
      if (p.positional.length === 0) throw new ValidationError('"nsbox volume inspect" requires at least 1 argument.', 'name');
      const all = await engine.volumes();
      let failed = 0;
      const out = p.positional.flatMap((name) => {
        const v = all.find((x) => x.name === name);
        if (!v) {
          failed++;
          process.stderr.write(`Error: No such volume: ${name}\n`);
          return [];
        }
        const labels = volumeLabels(v);
        return [{ CreatedAt: v.created, Driver: 'local', Labels: Object.keys(labels).length ? labels : null, Mountpoint: v.mountpoint, Name: v.name, Options: null, Scope: 'local' }];
      });
      process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      return failed ? 1 : 0;
    }
    case 'rm':
    case 'remove': {
      const p = parseArgs(rest, [{ names: ['force', 'f'], kind: 'bool' }], { stopAtPositional: false });
      if (p.positional.length === 0) throw new ValidationError('"nsbox volume rm" requires at least 1 argument.', 'name');
      let failed = 0;
      for (const name of p.positional) {
        try {
          await engine.removeVolume(name);
          process.stdout.write(`${name}\n`);
        } catch (e) {
          if (e instanceof NotFoundError && flag(p, 'force')) continue;
          failed++;
          process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
        }
      }
      return failed ? 1 : 0;
    }
    case 'prune': {
      const p = parseArgs(rest, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['all', 'a'], kind: 'bool' }]);
      if (!flag(p, 'force')) {
        process.stdout.write(`WARNING! This will remove ${flag(p, 'all') ? 'all' : 'anonymous'} local volumes not used by at least one container.\n`);
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question('Are you sure you want to continue? [y/N] ').finally(() => rl.close());
        if (!/^y(es)?$/i.test(answer.trim())) return 0;
      }
      const { volumes } = await engine.pruneVolumes({ all: flag(p, 'all') });
      if (volumes.length) process.stdout.write(`Deleted Volumes:\n${volumes.map((v) => `${v}\n`).join('')}\n`);
      process.stdout.write('Total reclaimed space: 0B\n');
      return 0;
    }
    default:
      throw new ValidationError(`"nsbox volume" takes create, ls, inspect, rm or prune${sub ? `, not ${sub}` : ''}`, 'command');
  }
}
