/** nsbox logs [-f] [-t] [--tail N] CONTAINER: the json-file log that nsbox-shim keeps. */
import { ContainerStore } from '../../engine/index.js';
import { NsboxError, ValidationError } from '../../errors.js';
import { readLog } from '../../runtime/shim.js';
import { flag, parseArgs, value } from '../args.js';
import { bundleOf } from '../detached.js';

export default async function logs(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['follow', 'f'], kind: 'bool' },
    { names: ['timestamps', 't'], kind: 'bool' },
    { names: ['tail', 'n'], kind: 'value' },
  ]);
  const ref = p.positional[0];
  if (!ref) throw new ValidationError('"nsbox logs" requires exactly 1 argument.', 'container');
  const store = await ContainerStore.open();
  const record = await store.get(ref);
  const bundle = bundleOf(record);
  if (!bundle) throw new NsboxError(`container ${ref} ran in the foreground: nsbox keeps logs of detached containers (run -d)`, { code: 'ERR_NO_LOGS' });
  const tail = value(p, 'tail');
  let entries = readLog(bundle);
  let printed = tail && tail !== 'all' ? Math.max(0, entries.length - Number(tail)) : 0;
  const print = () => {
    for (; printed < entries.length; printed++) {
      const e = entries[printed]!;
      const out = e.stream === 'stderr' ? process.stderr : process.stdout;
      out.write(flag(p, 'timestamps') ? `${e.time} ${e.log}` : e.log);
    }
  };
  print();
  while (flag(p, 'follow')) {
    await new Promise((r) => setTimeout(r, 200));
    entries = readLog(bundle);
    print();
    const now = await store.get(record.id);
    if (now.state !== 'running' && now.state !== 'paused') {
      entries = readLog(bundle);
      print();
      break;
    }
  }
  return 0;
}
