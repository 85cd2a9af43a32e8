/**
 * The frames of nsbox-shim's sockets (cpp/shim/attach.h): `u8 type, u32 big-endian length, payload`,
 * both ways, on attach.sock and events.sock alike.
 */

/** Frame types. */
export const AttachFrame = { stdin: 0, stdout: 1, stderr: 2, closeStdin: 3, resize: 4, exit: 5, event: 6 } as const;

const HEADER = 5;

export function encodeFrame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(HEADER);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** Cuts a byte stream into frames, across chunk boundaries. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);

  *push(chunk: Buffer): Generator<{ type: number; payload: Buffer }> {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (this.#buf.length >= HEADER) {
      const len = this.#buf.readUInt32BE(1);
      if (this.#buf.length < HEADER + len) break;
      const type = this.#buf[0]!;
      const payload = this.#buf.subarray(HEADER, HEADER + len);
      this.#buf = this.#buf.subarray(HEADER + len);
      yield { type, payload };
    }
  }
}
