/**
 * docker's multiplexed stream framing, used by attach, exec and logs of containers without a
 * terminal: `[stream][0 0 0][length uint32 BE][payload]`, stream 0 stdin, 1 stdout, 2 stderr. With a
 * terminal there is one stream only and the bytes go raw, so no framing exists there.
 */

export type MuxStream = 0 | 1 | 2;

export const MUX_HEADER_SIZE = 8;

/** One frame; an empty payload gives no frame (docker never sends one, and clients read 0 as EOF). */
export function muxFrame(stream: MuxStream, payload: Buffer): Buffer {
  if (payload.length === 0) return Buffer.alloc(0);
  const header = Buffer.alloc(MUX_HEADER_SIZE);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

export interface MuxChunk {
  stream: MuxStream;
  payload: Buffer;
}

/**
 * Splits a byte stream back into frames, whatever the chunk boundaries: for clients of the API
 * (the tests, SDK users reading /logs) rather than for the server itself.
 */
export class MuxDecoder {
  #buf: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns the frames completed by them. Throws on a header no server writes. */
  push(data: Buffer): MuxChunk[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, data]) : data;
    const out: MuxChunk[] = [];
    while (this.#buf.length >= MUX_HEADER_SIZE) {
      const stream = this.#buf[0]!;
      if (stream > 2 || this.#buf[1] !== 0 || this.#buf[2] !== 0 || this.#buf[3] !== 0) {
        throw new Error(`not a multiplexed stream: header ${this.#buf.subarray(0, MUX_HEADER_SIZE).toString('hex')}`);
      }
      const len = this.#buf.readUInt32BE(4);
      if (this.#buf.length < MUX_HEADER_SIZE + len) break;
      out.push({ stream: stream as MuxStream, payload: this.#buf.subarray(MUX_HEADER_SIZE, MUX_HEADER_SIZE + len) });
      this.#buf = this.#buf.subarray(MUX_HEADER_SIZE + len);
    }
    return out;
  }

  /** Bytes of an incomplete frame still held. */
  get pending(): number {
    return this.#buf.length;
  }
}
