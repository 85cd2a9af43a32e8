/**
 * Output of a container or exec onto an API connection: framed (docker's multiplexed stream) when
 * there is no terminal, raw with one. `pump` resolves once every source has ended, so that the
 * caller can close the connection only after the last byte is written.
 */
import type { Readable, Writable } from 'node:stream';
import { muxFrame, type MuxStream } from './mux-frame.js';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

export function pump(out: Writable, sources: Array<{ stream: Readable | null | undefined; id: MuxStream }>, framed: boolean): Promise<void> {
  return Promise.all(
    sources.map(
      ({ stream, id }) =>
        new Promise<void>((resolve) => {
          if (!stream || stream.readableEnded || stream.destroyed) {
            resolve();
            return;
          }
          stream.on('data', (d: Buffer) => {
            if (!out.writableEnded && !out.destroyed) out.write(framed ? muxFrame(id, d) : d);
          });
          // A pty master reads EIO once the terminal's last holder is gone: that is its end.
          stream.once('end', () => resolve());
          stream.once('close', () => resolve());
          stream.once('error', () => resolve());
        }),
    ),
  ).then(() => undefined);
}
