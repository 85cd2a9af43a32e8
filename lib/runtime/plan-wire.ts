/**
 * plan.bin: a `SpawnPlan` and the shim's settings, serialized for `nsbox-shim` (cpp/shim/plan-wire.h
 * reads it; no JSON library on that side). A small tagged binary tree, integers little-endian:
 *
 *   file  := "NSBXPLAN" u32 version(=1) value
 *   value := 'n' f64 | 't' | 'f' | 'z' (null)
 *          | 's' u32 len, UTF-8 | 'x' u32 len, bytes (a Buffer: the seccomp filter)
 *          | 'a' u32 count, value... | 'o' u32 count, (u32 keylen, key, value)...
 *
 * Object fields whose value is undefined are left out, as JSON.stringify does.
 */
import * as z from 'zod';
import type { SpawnPlan } from '../native.js';
import { validate } from './options.js';

export const PLAN_WIRE_MAGIC = 'NSBXPLAN';
export const PLAN_WIRE_VERSION = 1;
/** A bind source the shim replaces with its pty slave's path (use it as PlanContext.consolePath). */
export const CONSOLE_PLACEHOLDER = '@console';

/** What the shim does when the container exits (docker's `--restart`). */
export const RestartPolicySchema = z.string().regex(/^(no|always|unless-stopped|on-failure(:\d{1,9})?)$/, 'must be no, always, unless-stopped or on-failure[:N]');
export type RestartPolicy = 'no' | 'always' | 'unless-stopped' | 'on-failure' | `on-failure:${number}`;

/**
 * The HEALTHCHECK the shim runs (cpp/shim/health.cc): an exec plan compiled ahead (health-plan.ts;
 * the shim sets its enterPidfd and setns fds to the container's pidfd at each probe, its stdio to a
 * pipe), times in milliseconds, the cgroup's freezer file, and the earlier results (JSON objects).
 */
export const ShimHealthcheckSchema = z
  .object({
    plan: z.custom<SpawnPlan>((v) => typeof v === 'object' && v !== null && Array.isArray((v as SpawnPlan).argv), 'must be a spawn plan'),
    interval: z.number().int().positive(),
    timeout: z.number().int().positive(),
    startPeriod: z.number().int().nonnegative(),
    startInterval: z.number().int().positive(),
    retries: z.number().int().positive(),
    freezeFile: z.string().startsWith('/').optional(),
    log: z.array(z.string()).max(5).default([]),
  })
  .strict();
export type ShimHealthcheck = z.input<typeof ShimHealthcheckSchema>;

export const ShimSettingsSchema = z
  .object({
    restart: RestartPolicySchema.default('no'),
    /** Give the container a stdin pipe that attach clients write to (docker's -i); else /dev/null. */
    openStdin: z.boolean().default(false),
    /**
     * A terminal (docker's -t): the container's stdio is a pty, output is one stream, attach resizes
     * it. A plan's bind whose source is CONSOLE_PLACEHOLDER gets the pty's path (PlanContext.consolePath).
     */
    tty: z.union([z.boolean(), z.object({ cols: z.number().int().positive().max(65535), rows: z.number().int().positive().max(65535) }).strict()]).default(false),
    /** The signal the shim sends its container when it is told to stop (SIGTERM to the shim). */
    stopSignal: z.number().int().min(1).max(64).default(15),
    /** Seconds between the stop signal and SIGKILL. */
    stopTimeout: z.number().nonnegative().default(10),
    /**
     * Seconds to wait for a first attach client when the container is gone for good before anyone
     * attached (a `run` that attaches just after start still gets the whole short run and its exit).
     * Output from before the first attach is always replayed to that client.
     */
    awaitAttach: z.number().nonnegative().max(600).default(0),
    /** Run by the shim when it is done (the container gone for good), as podman's exit command: argv, argv[0] absolute. */
    exitCommand: z.array(z.string().regex(/^[^\0]*$/)).refine((a) => a.length === 0 || a[0]!.startsWith('/'), 'argv[0] must be an absolute path').optional(),
    healthcheck: ShimHealthcheckSchema.optional(),
    /**
     * The first run's start time (ISO 8601, UTC) as the shim records and reports it, instead of its
     * own clock's: the caller can then write its record before the report (restarts take their own).
     */
    startedAt: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/).optional(),
  })
  .strict();
export type ShimSettings = z.input<typeof ShimSettingsSchema>;

/** A value the encoder takes: what a SpawnPlan is made of. */
export type WireValue = number | boolean | null | undefined | string | Buffer | WireValue[] | { [key: string]: WireValue };

class Writer {
  #chunks: Buffer[] = [];
  byte(c: string): void {
    this.#chunks.push(Buffer.from(c, 'latin1'));
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.#chunks.push(b);
  }
  bytes(b: Buffer): void {
    this.u32(b.length);
    this.#chunks.push(b);
  }
  f64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(n);
    this.#chunks.push(b);
  }
  value(v: WireValue): void {
    if (v === null || v === undefined) this.byte('z');
    else if (typeof v === 'number') {
      this.byte('n');
      this.f64(v);
    } else if (typeof v === 'boolean') this.byte(v ? 't' : 'f');
    else if (typeof v === 'string') {
      this.byte('s');
      this.bytes(Buffer.from(v, 'utf8'));
    } else if (Buffer.isBuffer(v)) {
      this.byte('x');
      this.bytes(v);
    } else if (Array.isArray(v)) {
      this.byte('a');
      this.u32(v.length);
      for (const e of v) this.value(e);
    } else {
      const entries = Object.entries(v).filter(([, e]) => e !== undefined);
      this.byte('o');
      this.u32(entries.length);
      for (const [k, e] of entries) {
        this.bytes(Buffer.from(k, 'utf8'));
        this.value(e);
      }
    }
  }
  done(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/** Encodes any value tree (exported for tests). */
export function encodeWire(root: WireValue): Buffer {
  const w = new Writer();
  w.byte(PLAN_WIRE_MAGIC);
  w.u32(PLAN_WIRE_VERSION);
  w.value(root);
  return w.done();
}

/** plan.bin for `nsbox-shim`: the plan and the shim's settings. The plan's stdio is the shim's to choose. */
export function encodePlanFile(plan: SpawnPlan, settings: ShimSettings = {}): Buffer {
  const s = validate(ShimSettingsSchema, settings, 'shim settings');
  if (plan.enterPidfd !== undefined) throw new TypeError('encodePlanFile: a detached container cannot enter another one (enterPidfd)');
  const { tty, healthcheck, ...rest } = s;
  const size = tty === false || tty === true ? { cols: 80, rows: 24 } : tty;
  // The probe's container pidfd and stdio are the shim's to fill in at each run.
  const probe = healthcheck && {
    ...healthcheck,
    plan: { ...healthcheck.plan, enterPidfd: undefined, stdio: [-1, -1, -1], ops: healthcheck.plan.ops.map((op) => (op.op === 'setns' ? { ...op, fd: -1 } : op)) },
  };
  return encodeWire({ ...rest, tty: tty !== false, ...size, plan: plan as unknown as WireValue, ...(probe ? { healthcheck: probe as unknown as WireValue } : {}) });
}

/** Decodes what encodeWire wrote (the C++ reader's twin, for tests and tools). */
export function decodeWire(buf: Buffer): WireValue {
  if (buf.subarray(0, 8).toString('latin1') !== PLAN_WIRE_MAGIC) throw new Error('not an nsbox plan file');
  const version = buf.readUInt32LE(8);
  if (version !== PLAN_WIRE_VERSION) throw new Error(`plan file version ${version}`);
  let pos = 12;
  const u32 = () => {
    const n = buf.readUInt32LE(pos);
    pos += 4;
    return n;
  };
  const bytes = () => {
    const n = u32();
    if (pos + n > buf.length) throw new Error('corrupt plan file');
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const value = (): WireValue => {
    const t = String.fromCharCode(buf[pos++]!);
    switch (t) {
      case 'n': {
        const n = buf.readDoubleLE(pos);
        pos += 8;
        return n;
      }
      case 't': return true;
      case 'f': return false;
      case 'z': return null;
      case 's': return bytes().toString('utf8');
      case 'x': return Buffer.from(bytes());
      case 'a': return Array.from({ length: u32() }, () => value());
      case 'o': {
        const o: Record<string, WireValue> = {};
        for (let n = u32(); n > 0; n--) {
          const k = bytes().toString('utf8');
          o[k] = value();
        }
        return o;
      }
      default: throw new Error(`corrupt plan file: tag ${JSON.stringify(t)} at ${pos - 1}`);
    }
  };
  const v = value();
  if (pos !== buf.length) throw new Error('corrupt plan file: trailing bytes');
  return v;
}
