/**
 * Platforms: the host's (Node's `process.arch` in OCI names) and the choice of one entry of an
 * index, as containerd does it: os and architecture must match; the variant must match too, with
 * arm64's "" ≡ "v8" and an armv7 host also accepting v6 and v5 images (best first).
 */
import * as z from 'zod';
import { ValidationError } from '../../errors.js';
import type { Descriptor, Platform } from './manifest.js';

export const PlatformSpecSchema = z.object({
  os: z.string().min(1),
  architecture: z.string().min(1),
  variant: z.string().min(1).optional(),
});
export type PlatformSpec = z.infer<typeof PlatformSpecSchema>;

const ARCH: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};

/** This host's platform, e.g. `{ os: 'linux', architecture: 'amd64' }` or arm64 with variant v8. */
export function hostPlatform(arch: string = process.arch, armVersion?: string): PlatformSpec {
  const architecture = ARCH[arch] ?? arch;
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  if (architecture === 'arm') {
    const v = armVersion ?? String((process.config.variables as Record<string, unknown>)['arm_version'] ?? '7');
    return { os: 'linux', architecture, variant: `v${v}` };
  }
  return { os: 'linux', architecture };
}

/** Parses `linux/arm64/v8`, `linux/amd64` (docker's `--platform` form) or an object. */
export function parsePlatform(p: string | PlatformSpec): PlatformSpec {
  if (typeof p !== 'string') {
    const r = PlatformSpecSchema.safeParse(p);
    if (!r.success) throw new ValidationError(`invalid platform: ${r.error.issues[0]?.message ?? 'bad shape'}`, 'platform', r.error);
    return r.data;
  }
  const parts = p.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((s) => !/^[a-z0-9._-]+$/i.test(s))) {
    throw new ValidationError(`invalid platform ${JSON.stringify(p)}: expected os/arch[/variant], e.g. linux/arm64/v8`, 'platform');
  }
  const [os, arch, variant] = parts as [string, string, string | undefined];
  return { os: os.toLowerCase(), architecture: ARCH[arch] ?? arch.toLowerCase(), ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: PlatformSpec | Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Variants a platform accepts, best first; `undefined` means any. */
function acceptedVariants(want: PlatformSpec): Array<string | undefined> | undefined {
  if (want.architecture === 'arm64') return want.variant === undefined || want.variant === 'v8' ? ['v8', undefined] : [want.variant];
  if (want.architecture === 'arm' && want.variant) {
    const n = Number(want.variant.replace(/^v/, ''));
    if (Number.isInteger(n)) {
      const out: Array<string | undefined> = [];
      for (let v = n; v >= 5; v--) out.push(`v${v}`);
      if (n >= 7) out.push(undefined);
      return out;
    }
    return [want.variant];
  }
  return want.variant === undefined ? undefined : [want.variant];
}

/** The best index entry for `want`, or undefined. Entries without a platform never match. */
export function choosePlatform(manifests: readonly Descriptor[], want: PlatformSpec): Descriptor | undefined {
  const variants = acceptedVariants(want);
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const m of manifests) {
    const p = m.platform;
    if (!p || p.os !== want.os || p.architecture !== want.architecture) continue;
    const rank = variants === undefined ? 0 : variants.indexOf(p.variant);
    if (rank === -1) continue;
    if (rank < bestRank) {
      best = m;
      bestRank = rank;
    }
  }
  return best;
}
