/**
 * One Dockerfile instruction applied to a stage: the metadata ones change the image config (and
 * write a history entry with `empty_layer`), RUN runs a container, COPY and ADD write a diff, each
 * of those three a layer (reused from the build cache when its key matches). Variables are
 * expanded where the reference says so; RUN, CMD, ENTRYPOINT and SHELL are left to the shell.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { NsboxError, ValidationError } from '../errors.js';
import { HEALTHCHECK_FLAGS, healthcheckConfig } from './healthcheck.js';
import { applyChanges } from './dockerfile/changes.js';
import { expandWord, expandWords, keyValuePairs } from './dockerfile/expand.js';
import type { DockerfileNode } from './dockerfile/parse.js';
import { makeDir } from './copy.js';
import { copy } from './copy-step.js';
import { LayeredRoot } from './layered-root.js';
import { runStep } from './run-step.js';
import { bindSourceDigest, mountKey, parseMount, prepareMounts, type MountSpec } from './run-mounts.js';
import { expansionEnv, PROXY_ARGS, runArgs, type BuildEnv, type StageState } from './stage-state.js';
import { bad, flagsOf, layerStep, metaStep, type StepContext } from './step-core.js';
import { resolveUser } from '../runtime/image-config.js';

export { flagsOf, type StepContext } from './step-core.js';

function setConfig(state: StageState, patch: (c: NonNullable<StageState['config']['config']>) => void): void {
  const c = structuredClone(state.config.config ?? {});
  patch(c);
  state.config = { ...state.config, config: c };
}

/** Applies `node` to `state`. */
export async function executeNode(node: DockerfileNode, state: StageState, ctx: StepContext): Promise<void> {
  const { env } = ctx;
  const vars = expansionEnv(state);
  const word = (s: string) => expandWord(s, vars, env.escape);
  const meta = (createdBy: string) => metaStep(state, ctx, createdBy);
  switch (node.keyword) {
    case 'ENV': {
      flagsOf(node, []);
      const pairs = keyValuePairs(node.args, vars, env.escape, 'ENV');
      setConfig(state, (c) => {
        const list = [...(c.Env ?? [])];
        for (const [k, v] of pairs) {
          const i = list.findIndex((e) => e.slice(0, e.indexOf('=')) === k);
          if (i >= 0) list[i] = `${k}=${v}`;
          else list.push(`${k}=${v}`);
        }
        c.Env = list;
      });
      return meta(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    case 'LABEL': {
      flagsOf(node, []);
      const pairs = keyValuePairs(node.args, vars, env.escape, 'LABEL');
      setConfig(state, (c) => (c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(pairs) }));
      return meta(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    case 'ARG': {
      flagsOf(node, []);
      const decl = declareArgs(node, vars, env);
      for (const [k, , v] of decl) state.args.set(k, v);
      // as written (the default): a --build-arg's value reaches the key of the RUNs that get it
      return meta(`ARG ${decl.map(([k, d]) => (d === undefined ? k : `${k}=${d}`)).join(' ')}`);
    }
    case 'MAINTAINER': {
      state.config = { ...state.config, author: node.args };
      return meta(`MAINTAINER ${node.args}`);
    }
    case 'WORKDIR': {
      flagsOf(node, []);
      if (!node.args) throw bad(node, 'requires exactly one argument');
      const dir = path.posix.resolve(state.config.config?.WorkingDir || '/', word(node.args));
      setConfig(state, (c) => (c.WorkingDir = dir));
      const dirs = await ctx.layerDirs(state);
      if (new LayeredRoot(dirs).lookup(new LayeredRoot(dirs).resolve(dir))?.st.isDirectory()) return meta(`WORKDIR ${dir}`);
      // a WORKDIR the image lacks is made, as docker makes it: a layer with the directory
      return layerStep(state, ctx, `WORKDIR ${dir}`, [], async (upper) => {
        makeDir(upper, new LayeredRoot(dirs), dir, userOwner(state, dirs));
      });
    }
    case 'USER':
    case 'STOPSIGNAL':
    case 'EXPOSE':
    case 'VOLUME': {
      flagsOf(node, []);
      if (!node.args) throw bad(node, 'requires at least one argument');
      const text = node.keyword === 'VOLUME' || node.keyword === 'EXPOSE' ? (node.json ?? expandWords(node.args, vars, env.escape)).map((w) => (node.json ? word(w) : w)) : [word(node.args)];
      const change = node.keyword === 'VOLUME' ? `VOLUME ${JSON.stringify(text)}` : `${node.keyword} ${text.join(' ')}`;
      state.config = { ...state.config, config: applyChanges(state.config.config ?? {}, [change]) };
      return meta(change);
    }
    case 'CMD':
    case 'ENTRYPOINT':
    case 'SHELL': {
      flagsOf(node, []);
      if (node.keyword === 'SHELL' && !node.json) throw bad(node, 'requires the arguments to be in JSON form');
      const shell = state.config.config?.Shell ?? ['/bin/sh', '-c'];
      const argv = node.json ?? (node.args ? [...shell, node.args] : []);
      setConfig(state, (c) => {
        if (node.keyword === 'CMD') c.Cmd = argv;
        else if (node.keyword === 'SHELL') c.Shell = argv;
        else {
          c.Entrypoint = argv;
          if (!state.cmdSet) c.Cmd = null;
        }
      });
      if (node.keyword === 'CMD') state.cmdSet = true;
      return meta(`${node.keyword} ${JSON.stringify(argv)}`);
    }
    case 'ONBUILD': {
      const inner = /^\s*(\S+)/.exec(node.args)?.[1]?.toUpperCase();
      if (!inner) throw bad(node, 'requires at least one argument');
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(inner)) throw bad(node, `: ${inner} isn't allowed as an ONBUILD trigger`);
      setConfig(state, (c) => (c.OnBuild = [...(c.OnBuild ?? []), node.args]));
      return meta(`ONBUILD ${node.args}`);
    }
    case 'HEALTHCHECK': {
      const check = healthcheckConfig(node, flagsOf(node, HEALTHCHECK_FLAGS));
      setConfig(state, (c) => (c.Healthcheck = check));
      return meta(`HEALTHCHECK ${JSON.stringify(check)}`);
    }
    case 'RUN':
      return run(node, state, ctx);
    case 'COPY':
    case 'ADD':
      return copy(node, state, ctx, word);
    default:
      throw bad(node, `is not a Dockerfile instruction (line ${node.line}: ${JSON.stringify(node.original)})`);
  }
}

/** name, default, value (the --build-arg's, else the default) of each ARG word. */
function declareArgs(node: DockerfileNode, vars: Map<string, string>, env: BuildEnv): Array<[string, string | undefined, string | undefined]> {
  const out: Array<[string, string | undefined, string | undefined]> = [];
  for (const w of argWords(node.args)) {
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw bad(node, `: ${JSON.stringify(name)} is not a valid name`);
    const dflt = eq < 0 ? env.globalArgs.get(name) : expandWord(w.slice(eq + 1), vars, env.escape);
    const given = Object.hasOwn(env.buildArgs, name) ? env.buildArgs[name] : undefined;
    if (given !== undefined) env.usedArgs.add(name);
    out.push([name, eq < 0 ? undefined : dflt, given ?? dflt]);
  }
  if (out.length === 0) throw bad(node, 'requires at least one argument');
  return out;
}

/** ARG words: `a`, `b=1`, `c="x y"` (quotes kept for the later expansion). */
function argWords(s: string): string[] {
  const out: string[] = [];
  const re = /(?:[^\s\x22\x27]+|\x22(?:\\.|[^\x22\\])*\x22|\x27[^\x27]*\x27)+/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[0]);
  return out;
}

/** BuildKit makes a WORKDIR owned by the USER in effect. */
function userOwner(state: StageState, dirs: string[]): { uid: number; gid: number } {
  const user = state.config.config?.User;
  if (!user) return { uid: 0, gid: 0 };
  const u = resolveUser(user, dirs);
  return { uid: u.uid, gid: u.gid };
}

async function run(node: DockerfileNode, state: StageState, ctx: StepContext): Promise<void> {
  const { env } = ctx;
  const flags = flagsOf(node, ['network', 'mount', 'security']);
  const vars = expansionEnv(state);
  // --mount may be given more than once: flagsOf keeps the last, the node has them all
  const specs = node.flags.filter((f) => /^--mount=/i.test(f)).map((f) => {
    try {
      return parseMount(expandWord(f.slice(f.indexOf('=') + 1).replace(/^\x22([\s\S]*)\x22$/, '$1'), vars, env.escape));
    } catch (e) {
      if (e instanceof ValidationError) throw bad(node, `: ${e.message}`);
      throw e;
    }
  });
  if (flags.has('security') && flags.get('security') !== 'sandbox') throw new NsboxError(`Dockerfile:${node.line}: RUN --security=${flags.get('security')} is not supported (only sandbox)`, { code: 'ENOTSUP' });
  const shell = state.config.config?.Shell ?? ['/bin/sh', '-c'];
  let argv: string[];
  const docs = node.heredocs;
  if (node.json) argv = node.json;
  // `RUN <<EOF` alone: the heredoc is the script; else the shell reads the heredocs after the line
  else if (docs.length === 1 && /^\d*<<-?\S+$/.test(node.args.trim())) argv = [...shell, docs[0]!.content];
  else argv = [...shell, docs.length ? `${node.args}\n${docs.map((d) => `${d.content}${d.name}\n`).join('')}` : node.args];
  if (argv.length === 0) throw bad(node, 'requires at least one argument');
  const args = runArgs(state);
  const shown = node.json ? argv : [...shell, node.args];
  const createdBy = `RUN ${args.length ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}${shown.join(' ')} # buildkit`;
  const asked = flags.get('network') ?? 'default';
  if (asked !== 'host' && asked !== 'none' && asked !== 'default') throw bad(node, `: --network=${asked}: nsbox builds with none, host or default (the build's)`);
  const network = asked === 'default' ? env.network : asked;
  const proxies = Object.entries(env.buildArgs).filter(([k]) => PROXY_ARGS.includes(k));
  const tree = (from: string | undefined) => (from === undefined ? Promise.resolve(ctx.context) : ctx.fromTree(from));
  const bindDigests = new Map<MountSpec, string>();
  for (const m of specs) if (m.type === 'bind') bindDigests.set(m, bindSourceDigest(await tree(m.from), m.source));
  let ran: string | undefined;
  await layerStep(state, ctx, createdBy, [args, network, ...mountKey(specs, (m) => bindDigests.get(m)!)], async () => undefined, async (commit) => {
    const dirs = await ctx.layerDirs(state);
    const prepared = await prepareMounts(specs, {
      cacheDir: env.store.buildCache.mountsDir,
      scratch: path.join(env.runRoot, `mounts-${randomBytes(8).toString('hex')}`),
      secrets: env.secrets,
      tree,
      ...(env.signal ? { signal: env.signal } : {}),
    });
    try {
      return await runStep(
        {
          layers: dirs,
          argv,
          env: [...(state.config.config?.Env ?? []), ...args.map(([k, v]) => `${k}=${v}`), ...proxies.map(([k, v]) => `${k}=${v}`), ...prepared.env],
          cwd: state.config.config?.WorkingDir || '/',
          user: state.config.config?.User || undefined,
          network,
          mounts: prepared.mounts,
          display: shown.join(' '),
          onStart: (id) => {
            ran = id;
            env.progress({ type: 'running', container: id });
          },
          onOutput: (data) => env.progress({ type: 'output', data }),
          ...(env.signal ? { signal: env.signal } : {}),
        },
        env.runRoot,
        commit,
      );
    } finally {
      await prepared.release();
    }
    // a bind mount's content is not in `created_by`: a --cache-from history entry must be matched by the layer made
  }, specs.some((m) => m.type === 'bind'));
  if (ran) env.progress({ type: 'removed', container: ran });
}

