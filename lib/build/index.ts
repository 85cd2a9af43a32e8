/**
 * lib/build: images made from instructions: `buildImage` (a Dockerfile and its context, the
 * builder behind `nsbox build`, `Image.build` and the API's /build) and `importImage`
 * (`import --change`), over one Dockerfile parser. Sits above image, storage and runtime, below
 * engine, cli and api.
 */
export { applyChanges } from './dockerfile/changes.js';
export { parseDockerfile, DockerfileParseError, type Dockerfile, type DockerfileNode, type Heredoc } from './dockerfile/parse.js';
export { buildImage, type BuildOptions, type BuildProgress } from './build.js';
export { RunFailedError } from './run-step.js';
export { legacyProgress } from './legacy-output.js';
export { importImage, type ImportImageOptions, type ImportSource } from './import.js';
export { buildCacheUsage, pruneBuildCache, type BuildCacheItem, type PruneBuildCacheOptions } from './prune.js';
