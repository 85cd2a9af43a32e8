/**
 * What the quick `nsbox run --rm` (run.ts) takes of run's flags, and the key of its plan
 * (lib/engine/run-plan.ts) for a request: the full command's foreground run keeps its start under
 * the same key (commands/run.ts), the quick run looks it up.
 */
import { runPlanKey } from '../../engine/run-plan.js';
import { flag, parseArgs, value, values, type FlagSpec } from '../args.js';

/** The flags the quick run takes; any other is the full command's (parseArgs throws on it). */
export const QUICK_RUN_FLAGS: FlagSpec[] = [
  { names: ['rm'], kind: 'bool' },
  { names: ['interactive', 'i'], kind: 'bool' },
  { names: ['name'], kind: 'value' },
  { names: ['env', 'e'], kind: 'list' },
  { names: ['workdir', 'w'], kind: 'value' },
  { names: ['user', 'u'], kind: 'value' },
  { names: ['network', 'net'], kind: 'value' },
];

export interface QuickRunRequest {
  image: string;
  command: string[];
  /** NAME=value, NAME alone taken from our environment (as the full command does). */
  env: string[];
  workdir?: string;
  user?: string;
  /** --network none|host, or absent (the default: none unless NSBOX_DEFAULT_NETWORK, which is in the key). */
  network?: 'none' | 'host';
  interactive: boolean;
  name?: string;
}

/** The request, or undefined when it is not one the quick run takes (nothing is said: the full command is). */
export function quickRunRequest(argv: string[], env: NodeJS.ProcessEnv = process.env): QuickRunRequest | undefined {
  let p: ReturnType<typeof parseArgs>;
  try {
    p = parseArgs(argv, QUICK_RUN_FLAGS);
  } catch {
    // a flag the quick path does not know: the full CLI parses it (and words any error)
    return undefined;
  }
  if (!flag(p, 'rm') || p.flags.get('rm') !== true) return undefined;
  const [image, ...command] = p.positional;
  // Without a command the image's is taken: fine, the plan has it; a digest reference is the full path's.
  if (!image || image.startsWith('-') || image.includes('@') || [image, ...command].some((a) => a.includes('\0'))) return undefined;
  const vars = values(p, 'env').map((e) => (e.includes('=') ? e : `${e}=${env[e] ?? ''}`));
  if (vars.some((e) => !/^[^=\0]+=[^\0]*$/.test(e))) return undefined;
  const workdir = value(p, 'workdir');
  if (workdir !== undefined && !/^\/[^\0]*$/.test(workdir)) return undefined;
  const user = value(p, 'user');
  if (user !== undefined && !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(user)) return undefined;
  const network = value(p, 'network');
  if (network !== undefined && network !== 'none' && network !== 'host') return undefined;
  const name = value(p, 'name');
  if (name !== undefined && !/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) return undefined;
  return {
    image,
    command,
    env: vars,
    ...(workdir ? { workdir } : {}),
    ...(user ? { user } : {}),
    ...(network ? { network } : {}),
    interactive: flag(p, 'interactive'),
    ...(name !== undefined ? { name: name.replace(/^\//, '') } : {}),
  };
}

/** The plan's key for `req` (its name aside: it only names the record); undefined outside the bundles. */
export function quickRunKey(req: QuickRunRequest, root: string): string | undefined {
  const { name: _name, ...request } = req;
  void _name;
  return runPlanKey(request, root);
}
