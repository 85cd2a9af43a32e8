/** `run`: create + start, then (without --detach) wait for the init, delete, and exit with its status. */
import { native, type ExitInfo } from '../native.js';
import { createContainer, type CreateOptions } from './create.js';
import { deleteContainer, startContainer } from './lifecycle.js';

export async function runContainer(o: CreateOptions, detach: boolean): Promise<number> {
  const { pidfd } = await createContainer(o);
  // The init is our child: its exit is watched (and it is reaped) through its pidfd.
  const exited = detach ? undefined : new Promise<ExitInfo>((resolve) => native.watchExit(pidfd, resolve));
  try {
    await startContainer(o.root, o.id, exited);
  } catch (e) {
    await deleteContainer(o.root, o.id, true);
    throw e;
  }
  if (!exited) return 0;
  const info = await exited;
  await deleteContainer(o.root, o.id, true);
  return info.signal ? 128 + info.signal : (info.exitCode ?? 255);
}
