/** nsbox info: the host as nsbox sees it. */
import { Cgroup } from '../../cgroup/cgroup.js';
import { openEngine } from '../open-engine.js';
import { defaultRoot } from '../../storage/layout.js';
import { isPrivileged } from '../../privilege.js';
import { release } from 'node:os';

export default async function info(): Promise<number> {
  const layout = await Cgroup.detect();
  const images = await (await openEngine()).images.list();
  process.stdout.write(
    [
      `Images: ${images.length}`,
      `Storage root: ${defaultRoot()}`,
      `Cgroup mode: ${layout.mode}`,
      `Cgroup controllers: ${Object.entries(layout.controllers).map(([c, i]) => `${c}(v${i.version})`).join(' ')}`,
      `Rootless: ${!isPrivileged()}`,
      `Kernel: ${release()}`,
      `Architecture: ${process.arch}`,
      '',
    ].join('\n'),
  );
  return 0;
}
