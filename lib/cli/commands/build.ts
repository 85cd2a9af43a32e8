/**
 * nsbox build [-t NAME]... [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [--pull]
 * [--cache-from IMAGE]... [--label K=V]... [--network none|host] [--secret id=ID,src=FILE|env=VAR]... [-q] [--iidfile FILE]
 * [--progress auto|plain|tty|quiet] PATH|-: builds an image from a Dockerfile. `-` reads a tar of
 * the context from stdin, as docker does. The progress: with `auto` (the default), BuildKit's live
 * view of the steps on stderr when stderr is a terminal, else docker's legacy builder output on
 * stdout (`Step 1/3 : FROM busybox`, …, `Successfully built <id>`, `Successfully tagged <name>`);
 * `plain` is BuildKit's `#N [k/n] …` lines on stderr, `tty` its live view, `quiet` (-q) only the id.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildImage, type BuildProgress } from '../../build/build.js';
import { buildPlanKey, contextFingerprint, dropBuildPlan, newBuildFacts, warmEvents, writeBuildPlan, type BuildFacts, type BuildPlan, type FingerprintEntry } from '../../build/build-plan.js';
import { writeFastRecord } from '../../build/build-fast-record.js';
import { legacyProgress, shortBuildId } from '../../build/legacy-output.js';
import { plainProgress, type BuildView } from '../../build/plain-progress.js';
import { ttyProgress } from '../../build/tty-progress.js';
import { ValidationError } from '../../errors.js';
import { parseReference } from '../../image/reference.js';
import { defaultRoot } from '../../storage/layout.js';
import { flag, parseArgs, value, values } from '../args.js';
import { BUILD_FLAGS, buildArgsOf, pairs, planRequest, secretsOf } from './build-request.js';

export default async function buildCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, BUILD_FLAGS, { stopAtPositional: false });
  const [ctx, ...extra] = p.positional;
  if (!ctx || extra.length) throw new ValidationError('"nsbox build" requires exactly 1 argument: PATH|-', 'context');
  const tags = values(p, 'tag');
  for (const t of tags) parseReference(t);
  const mode = value(p, 'progress') ?? 'auto';
  if (!['auto', 'plain', 'tty', 'quiet'].includes(mode)) throw new ValidationError(`--progress ${mode}: expected auto, plain, tty or quiet`, 'progress');
  const quiet = flag(p, 'quiet') || mode === 'quiet';
  const view: BuildView | undefined = quiet
    ? undefined
    : mode === 'plain'
      ? plainProgress((s) => process.stderr.write(s))
      : mode === 'tty' || (mode === 'auto' && process.stderr.isTTY)
        ? ttyProgress(process.stderr)
        : undefined;
  const file = value(p, 'file');
  const target = value(p, 'target');
  const network = value(p, 'network');
  const out = legacyProgress((s) => process.stdout.write(s), quiet);
  // The plan of this build for the quick build (build-plan.ts): the context's fingerprint before
  // the build reads it, what the build read and wrote, and its progress.
  const request = planRequest(p, view !== undefined);
  const root = defaultRoot();
  const planKey = request && buildPlanKey(request, root);
  const entries: FingerprintEntry[] = [];
  const fingerprint = request && planKey !== undefined ? contextFingerprint(request.context, request.dockerfile, entries) : undefined;
  const facts: BuildFacts | undefined = fingerprint && !fingerprint.racy ? newBuildFacts() : undefined;
  const events: BuildProgress[] = [];
  const onProgress =
    view?.onProgress ??
    ((e: BuildProgress) => {
      if (facts) events.push(e);
      // warnings go to stderr, as docker prints them
      if (e.type === 'warning') process.stderr.write(`${e.message}\n`);
      else out(e);
    });
  const building = buildImage({
    context: ctx === '-' ? (process.stdin as AsyncIterable<Uint8Array>) : ctx,
    // -f is a path from here, as docker's CLI reads it; with a context from stdin, a name in it
    ...(file !== undefined ? { dockerfile: ctx === '-' ? file : path.resolve(file) } : {}),
    tags,
    // as docker's CLI does: SOURCE_DATE_EPOCH from the environment is passed as that build arg
    buildArgs: buildArgsOf(p),
    labels: pairs(values(p, 'label'), 'label'),
    ...(target !== undefined ? { target } : {}),
    noCache: flag(p, 'no-cache'),
    pull: flag(p, 'pull'),
    cacheFrom: values(p, 'cache-from'),
    ...(network !== undefined ? { network } : {}),
    secrets: secretsOf(values(p, 'secret')),
    liveProgress: view !== undefined,
    onProgress,
  }, facts);
  const image = await building.catch((e: unknown) => {
    view?.fail(e instanceof Error ? e : new Error(String(e)));
    throw e;
  });
  let plan: BuildPlan | undefined;
  if (planKey !== undefined) {
    try {
      if (facts?.image && !facts.unplannable && fingerprint) {
        const { image: planImage, git = {} } = facts;
        plan = {
          key: planKey,
          madeAt: Date.now(),
          fingerprint: fingerprint.digest,
          git,
          images: facts.images,
          cache: [...facts.cache].map(([file, text]) => ({ file, text })),
          chains: [...facts.chains],
          events: warmEvents(events, facts.lookups),
          image: planImage,
        };
        writeBuildPlan(root, plan);
      } else dropBuildPlan(root, planKey);
    } catch {
      // a plan is only a cache (the next build of this request is then a full one); the build is done
    }
  }
  const iidfile = value(p, 'iidfile');
  if (iidfile !== undefined) await writeFile(iidfile, image.id);
  // The native launcher's record of the command line the next build of this request is (the same,
  // without --no-cache): it answers that build without Node while nothing changes (build-fast-record.ts).
  const args = fastArgs(argv);
  if (plan && request && args && (quiet || (mode === 'auto' && !view))) {
    await writeFastRecord({ root, context: request.context, args, plan, entries, manifestDigest: image.digest, quiet, iidfile, tags: tags.map((t) => parseReference(t)) });
  }
  if (quiet) process.stdout.write(`${image.id}\n`);
  else if (view) view.done(image.id, tags.map((t) => parseReference(t).toString()));
  else {
    process.stdout.write(`Successfully built ${shortBuildId(image.id)}\n`);
    for (const t of tags) process.stdout.write(`Successfully tagged ${parseReference(t).familiar}\n`);
  }
  return 0;
}

/**
 * The command line a record is kept for: this process's own when it is `build` with these
 * arguments, less a `--no-cache` that reads as nothing else (a cold build's record is its warm
 * build's); undefined otherwise (the SDK, a command line the launcher does not see whole).
 */
function fastArgs(argv: string[]): string[] | undefined {
  const own = process.argv.slice(2);
  if (own[0] !== 'build' || own.length !== argv.length + 1 || argv.some((a, i) => own[i + 1] !== a)) return undefined;
  const p = parseArgs(argv, BUILD_FLAGS, { stopAtPositional: false });
  if (!flag(p, 'no-cache')) return own;
  const i = argv.indexOf('--no-cache');
  if (i < 0 || argv.indexOf('--no-cache', i + 1) >= 0) return undefined;
  const rest = [...argv.slice(0, i), ...argv.slice(i + 1)];
  const q = parseArgs(rest, BUILD_FLAGS, { stopAtPositional: false });
  const same = (x: typeof p) => JSON.stringify({ f: [...x.flags].filter(([k]) => k !== 'no-cache').sort(), pos: x.positional });
  return !flag(q, 'no-cache') && same(q) === same(p) ? ['build', ...rest] : undefined;
}
