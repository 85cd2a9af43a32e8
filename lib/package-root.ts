/**
 * The package's root directory, where package.json, bin/ and build/ are: found by walking up from
 * this module, so it holds from lib/ (tsx), dist/ and the CLI's bundle in dist/cli-bundle/ alike.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function find(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`nsbox: no package.json above ${from}`);
  }
}

// import.meta.dirname: Node 20.11 on, and the CLI's bundles (their __dirname, tools/bundle-cli.mjs).
export const packageRoot: string = find(import.meta.dirname ?? dirname(fileURLToPath(import.meta.url)));

/** A path inside the package. */
export const packagePath = (...parts: string[]): string => join(packageRoot, ...parts);
