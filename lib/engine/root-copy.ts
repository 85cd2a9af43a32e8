/**
 * The SDK's copyTo/copyFrom over a container root it has opened (in-process containers and
 * reusable engine ones alike): docker cp's rules (copy.ts) with the host's `/` as the other end,
 * a Buffer as one file. Each takes the root over and closes it when done (a tar: once read or destroyed).
 */
import type { Readable } from 'node:stream';
import { NotFoundError } from '../errors.js';
import { archivePath, statPath } from './archive-read.js';
import { copyBuffer, copyPath, type CopyOptions } from './copy.js';
import { RootDir } from './in-root.js';

export type CopyToOptions = { mode?: number } & Pick<CopyOptions, 'copyUIDGID' | 'followLink' | 'makeParents'>;
export type CopyFromOptions = Pick<CopyOptions, 'copyUIDGID' | 'followLink'>;

/** A host path (docker cp's rules) or a Buffer (the file `containerPath`, parents made) into `root`. */
export async function copyIntoRoot(root: RootDir, source: string | Buffer, containerPath: string, opts: CopyToOptions, name: string): Promise<void> {
  try {
    if (Buffer.isBuffer(source)) await copyBuffer(root, source, containerPath, opts.mode);
    else {
      const host = RootDir.ofDir('/');
      try {
        await copyPath(host, source, root, containerPath, { ...opts, fromName: 'the host', toName: name });
      } finally {
        await host.close();
      }
    }
  } finally {
    await root.close();
  }
}

/** `containerPath` of `root` to `hostPath` (docker cp's rules), or, without one, as a tar stream. */
export async function copyOutOfRoot(root: RootDir, containerPath: string, hostPath: string | undefined, opts: CopyFromOptions, name: string): Promise<Readable | void> {
  if (hostPath === undefined) {
    try {
      if (!statPath(root, containerPath)) throw new NotFoundError(`Could not find the file ${containerPath} in ${name}`, { code: 'ENOENT', path: containerPath });
      const tar = archivePath(root, containerPath);
      tar.once('close', () => void root.close().catch((e: unknown) => process.emitWarning(`${name}: its root was not released: ${(e as Error).message}`, { code: 'NSBOX_ROOT_LEFT' })));
      return tar;
    } catch (e) {
      await root.close();
      throw e;
    }
  }
  const host = RootDir.ofDir('/');
  try {
    await copyPath(root, containerPath, host, hostPath, { copyUIDGID: true, ...opts, fromName: name, toName: 'the host' });
  } finally {
    await host.close();
    await root.close();
  }
}
