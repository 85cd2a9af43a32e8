/**
 * Stdio for a container's process: pipes (wrapped as Node streams), the caller's own fds,
 * /dev/null, or a pseudo-terminal whose slave becomes the controlling terminal.
 */
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { isCode, reportCleanupError } from '../errors.js';
import { native } from '../native.js';
import type { StdioKind } from './options.js';

export interface PreparedStdio {
  /** fds the child gets as 0, 1, 2. */
  childFds: [number, number, number];
  /** Parent-owned fds that the child inherited: closed once the child has started (or failed). */
  closeAfterSpawn: number[];
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  /** The pty master when there is a terminal. */
  ptyMaster?: number;
  consolePath?: string;
  ctty: boolean;
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch (err) {
    // EBADF: already closed; anything else (EIO) leaves the fd closed too, so it is reported, not thrown
    if (!isCode(err, 'EBADF')) reportCleanupError(`closing fd ${fd}`)(err);
  }
}

function pipeReader(fd: number): Readable {
  return new net.Socket({ fd, readable: true, writable: false });
}
function pipeWriter(fd: number): Writable {
  return new net.Socket({ fd, readable: false, writable: true });
}

/**
 * A pty master: writes go to the tty stream, output comes through a PassThrough, because reading a
 * master whose slave side has closed fails with EIO, which here is just the end of the output.
 */
function ptyStreams(fd: number): { input: Writable; output: Readable } {
  const s = new tty.ReadStream(fd);
  const output = new PassThrough();
  s.on('data', (d: Buffer) => output.write(d));
  s.on('end', () => output.end());
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EIO') output.end();
    else output.destroy(e);
  });
  output.on('close', () => s.destroy());
  return { input: s, output };
}

export function prepareStdio(kinds: StdioKind | [StdioKind, StdioKind, StdioKind], ttyOpt: boolean | { cols: number; rows: number }): PreparedStdio {
  const all: [StdioKind, StdioKind, StdioKind] = Array.isArray(kinds) ? kinds : [kinds, kinds, kinds];
  const out: PreparedStdio = { childFds: [-1, -1, -1], closeAfterSpawn: [], stdin: null, stdout: null, stderr: null, ctty: false };
  const opened: number[] = [];
  try {
    if (ttyOpt !== false) {
      const size = ttyOpt === true ? { cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 } : ttyOpt;
      const p = native.openPty(size);
      opened.push(p.master, p.slave);
      out.childFds = [p.slave, p.slave, p.slave];
      out.closeAfterSpawn.push(p.slave);
      out.ptyMaster = p.master;
      out.consolePath = p.path;
      out.ctty = true;
      const { input, output } = ptyStreams(p.master);
      out.stdin = input;
      out.stdout = output;
      return out;
    }
    let devnull = -1;
    for (let i = 0; i < 3; i++) {
      const k = all[i]!;
      if (k === 'inherit') out.childFds[i] = i;
      else if (typeof k === 'number') out.childFds[i] = k;
      else if (k === 'ignore') {
        if (devnull < 0) {
          devnull = openSync('/dev/null', 'r+');
          opened.push(devnull);
          out.closeAfterSpawn.push(devnull);
        }
        out.childFds[i] = devnull;
      } else {
        const [r, w] = native.pipe();
        opened.push(r, w);
        if (i === 0) {
          out.childFds[0] = r;
          out.closeAfterSpawn.push(r);
          out.stdin = pipeWriter(w);
        } else {
          out.childFds[i] = w;
          out.closeAfterSpawn.push(w);
          if (i === 1) out.stdout = pipeReader(r);
          else out.stderr = pipeReader(r);
        }
      }
    }
    return out;
  } catch (e) {
    for (const fd of opened) closeQuietly(fd);
    throw e;
  }
}

/** Tears down the parent's side after a failed spawn. */
export function discardStdio(s: PreparedStdio): void {
  for (const fd of s.closeAfterSpawn) closeQuietly(fd);
  s.closeAfterSpawn = [];
  for (const st of [s.stdin, s.stdout, s.stderr]) st?.destroy();
}
