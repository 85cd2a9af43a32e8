/**
 * COPY and ADD as steps: the sources matched (the context, `--from=` a stage or an image, URLs),
 * keyed by their content, written into the step's upper directory by copy.ts. BuildKit's flags:
 * `--chown`, `--chmod`, `--exclude=PATTERN` (repeatable; `.dockerignore`'s matcher, against the
 * path below a directory source, or a file source's name; excluded files are neither copied nor
 * in the key), `--parents` (a source keeps its path from the context root, or from a `/./` in it,
 * below the destination directory), `--link` (the layer is made over nothing: the destination's
 * directories are new ones, nothing of the parent is read or followed; the layer is keyed without
 * its parent and reused over a changed one).
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { NsboxError } from '../errors.js';
import { resolveUser } from '../runtime/image-config.js';
import { checkoutGit } from './add-git.js';
import { downloadUrls, isGitUrl, isHttpUrl } from './add-url.js';
import { copyInto } from './copy.js';
import { expandWords } from './dockerfile/expand.js';
import type { DockerfileNode } from './dockerfile/parse.js';
import { DockerIgnore } from './dockerignore.js';
import { cleanRel, LayeredRoot } from './layered-root.js';
import { ExcludingTree, matchSources, sourcesDigest, type SourceTree } from './source-tree.js';
import { expansionEnv, hashKey, type StageState } from './stage-state.js';
import { bad, flagsOf, layerStep, linkStep, type StepContext } from './step-core.js';

const unquote = (s: string) => s.replace(/^\x22([\s\S]*)\x22$/, '$1');

export async function copy(node: DockerfileNode, state: StageState, ctx: StepContext, word: (s: string) => string): Promise<void> {
  const isAdd = node.keyword === 'ADD';
  const flags = flagsOf(node, isAdd ? ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'] : ['from', 'chown', 'chmod', 'link', 'parents', 'exclude']);
  const words = node.json ? node.json.map(word) : expandWords(node.args, expansionEnv(state), ctx.env.escape);
  if (words.length < 2) throw bad(node, 'requires at least two arguments, but only one was provided. Destination could not be determined.');
  const dest = words.at(-1)!;
  const docs = new Map(node.heredocs.map((d) => [d.name, d]));
  const srcWords = words.slice(0, -1);
  const inline = srcWords.filter((w) => /^\d*<<-?/.test(w)).map((w) => {
    const d = docs.get(w.replace(/^\d*<<-?/, '').replace(/^[\x22\x27]|[\x22\x27]$/g, ''));
    if (!d) throw bad(node, `: heredoc ${w} has no content`);
    // only $ expands in a heredoc: quotes and other backslashes stay as written
    return { name: d.name, content: d.expand ? word(d.content.replace(/\\(?![$\\])/g, '\\\\').replace(/[\x22\x27]/g, '\\$&')) : d.content };
  });
  const sources = srcWords.filter((w) => !/^\d*<<-?/.test(w));
  const gits = sources.filter(isGitUrl);
  if (gits.length && !isAdd) throw bad(node, `: source can't be a git repository for COPY (${gits[0]}): use ADD`);
  if (gits.length && sources.length !== 1) throw new NsboxError(`Dockerfile:${node.line}: ADD of a git repository takes it as its only source`, { code: 'ENOTSUP' });
  if (!gits.length && flags.has('keep-git-dir')) throw bad(node, ': --keep-git-dir needs a git repository source');
  const urls = isAdd && !gits.length ? sources.filter(isHttpUrl) : [];
  if (urls.length && urls.length !== sources.length) throw new NsboxError(`Dockerfile:${node.line}: ADD of URLs and local files together is not supported yet`, { code: 'ENOTSUP' });
  if (flags.has('checksum') && !urls.length && !gits.length) throw bad(node, ': --checksum needs a URL source');
  const from = flags.get('from');
  const fetched = urls.length || gits.length ? path.join(ctx.env.store.layout.tmpDir, `${ctx.env.tmpPrefix}add-${randomBytes(8).toString('hex')}`) : undefined;
  try {
    const keepGitDir = flags.has('keep-git-dir') && flags.get('keep-git-dir') !== 'false';
    const got = !fetched ? undefined : gits.length ? await checkoutGit(gits[0]!, fetched, keepGitDir, flags.get('checksum')) : await downloadUrls(urls, fetched, flags.get('checksum'));
    let tree = got ? got.tree : from === undefined ? ctx.context : await ctx.fromTree(word(from));
    const parents = flags.has('parents') && flags.get('parents') !== 'false';
    // each matched path with the part of it --parents drops (up to a `/./`, else nothing)
    const matched = got ? got.items.map((i) => ({ item: i, base: '' })) : sources.flatMap((s) => {
      const pivot = parents ? s.replace(/^\.\//, '').indexOf('/./') : -1;
      const base = pivot < 0 ? '' : cleanRel(s.replace(/^\.\//, '').slice(0, pivot));
      return matchSources(tree, s).map((item) => ({ item, base }));
    });
    const excludes = node.flags.filter((f) => /^--exclude=/.test(f)).map((f) => word(unquote(f.slice('--exclude='.length))));
    let kept = matched;
    if (excludes.length) {
      tree = new ExcludingTree(tree, matched.map((m) => m.item), new DockerIgnore(excludes.join('\n')));
      kept = matched.filter((m) => tree.lstat(m.item) !== undefined);
    }
    await copyStep(node, state, ctx, word, { isAdd, flags, from, tree, items: kept.map((m) => m.item), ...(parents ? { parents: kept.map((m) => m.base) } : {}), inline, sources, dest, remote: got !== undefined, ...(got && 'digest' in got && typeof got.digest === 'string' ? { digest: got.digest } : {}) });
  } finally {
    if (fetched) await rm(fetched, { recursive: true, force: true });
  }
}

interface CopyPlan {
  isAdd: boolean;
  flags: Map<string, string>;
  from: string | undefined;
  tree: SourceTree;
  items: string[];
  /** --parents: per item, the leading path that is not kept. */
  parents?: string[];
  inline: Array<{ name: string; content: string }>;
  sources: string[];
  dest: string;
  /** ADD of URLs: the files are not unpacked. */
  remote: boolean;
  /** The sources' key when not their content (a git checkout's: its commit). */
  digest?: string;
}

async function copyStep(node: DockerfileNode, state: StageState, ctx: StepContext, word: (s: string) => string, plan: CopyPlan): Promise<void> {
  const { isAdd, flags, from, tree, items, inline, sources, dest } = plan;
  const chownSpec = flags.get('chown');
  const chmodSpec = flags.get('chmod');
  if (chmodSpec !== undefined && !/^[0-7]{3,4}$/.test(chmodSpec)) throw bad(node, `: --chmod=${chmodSpec}: expected an octal mode`);
  const shownSrc = [...sources, ...inline.map((d) => `<<${d.name}`)];
  const createdBy = `${node.keyword} ${[...node.flags.filter((f) => !f.startsWith('--from')), ...(from ? [`--from=${from}`] : [])].map((f) => `${f} `).join('')}${shownSrc.join(' ')} ${dest} # buildkit`;
  const digest = plan.digest ?? sourcesDigest(tree, items, ctx.env.digests);
  const workdir = state.config.config?.WorkingDir || '/';
  const link = flags.has('link') && flags.get('link') !== 'false';
  const dirs = await ctx.layerDirs(state);
  const chown = chownSpec === undefined ? undefined : resolveUser(word(chownSpec), dirs);
  const make = async (upper: string) => {
    await copyInto(upper, new LayeredRoot(link ? [] : dirs), {
      tree,
      items,
      ...(plan.parents ? { parents: plan.parents } : {}),
      inline,
      wildcard: sources.some((s) => /[*?[]/.test(s)),
      dest,
      workdir,
      ...(chown ? { chown: { uid: chown.uid, gid: chown.gid } } : {}),
      ...(chmodSpec !== undefined ? { chmod: parseInt(chmodSpec, 8) } : {}),
      unpackArchives: isAdd && from === undefined && !plan.remote,
    });
  };
  if (link) return linkStep(state, ctx, createdBy, hashKey('link', createdBy, digest, inline, workdir, chown ? [chown.uid, chown.gid] : null), make);
  await layerStep(state, ctx, createdBy, [digest, inline, state.config.config?.WorkingDir ?? '/'], make, undefined, true);
}
