/**
 * Classic BPF as the kernel's seccomp filter reads it: `struct sock_filter { u16 code; u8 jt; u8 jf;
 * u32 k; }`, 8 bytes, in the machine's byte order (little-endian on both supported arches).
 */
export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const BPF = {
  LD_W_ABS: 0x20, // A = *(u32 *)(seccomp_data + k)
  ALU_AND_K: 0x54, // A &= k
  JA: 0x05, // pc += k (32-bit offset: the only long jump)
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** The kernel's limit on one filter (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

/** `struct seccomp_data` offsets: nr, arch, then the six u64 args from 16. */
export const SECCOMP_DATA = { nr: 0, arch: 4, argLow: (i: number) => 16 + 8 * i, argHigh: (i: number) => 20 + 8 * i } as const;

export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  USER_NOTIF: 0x7fc00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

export const ld = (offset: number): Insn => ({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset });
export const and = (k: number): Insn => ({ code: BPF.ALU_AND_K, jt: 0, jf: 0, k: k >>> 0 });
export const ret = (k: number): Insn => ({ code: BPF.RET_K, jt: 0, jf: 0, k: k >>> 0 });
export const ja = (k: number): Insn => ({ code: BPF.JA, jt: 0, jf: 0, k });

export function jump(code: number, k: number, jt: number, jf: number): Insn {
  if (jt < 0 || jt > 255 || jf < 0 || jf > 255) throw new RangeError(`BPF jump out of range (jt ${jt}, jf ${jf})`);
  return { code, jt, jf, k: k >>> 0 };
}

export function encodeProgram(insns: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((ins, i) => {
    buf.writeUInt16LE(ins.code, i * 8);
    buf.writeUInt8(ins.jt, i * 8 + 2);
    buf.writeUInt8(ins.jf, i * 8 + 3);
    buf.writeUInt32LE(ins.k >>> 0, i * 8 + 4);
  });
  return buf;
}

export function decodeProgram(buf: Buffer): Insn[] {
  const out: Insn[] = [];
  for (let o = 0; o + 8 <= buf.length; o += 8) {
    out.push({ code: buf.readUInt16LE(o), jt: buf.readUInt8(o + 2), jf: buf.readUInt8(o + 3), k: buf.readUInt32LE(o + 4) });
  }
  return out;
}
