#!/usr/bin/env node
// The nsbox CLI: `npx nsbox …` in a checkout, `nsbox …` after a global install. It runs the CLI's
// bundle (tools/bundle-cli.mjs, built with dist/) with its code cache when there is one: it starts
// in a fraction of the time of dist/'s few hundred modules.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { compileBundle } from './compile-bundle.js';

const bundle = fileURLToPath(new URL('../dist/cli-bundle/nsbox.cjs', import.meta.url));
const cli = existsSync(bundle) ? compileBundle(bundle, `${bundle}.cache`).run(createRequire(bundle)) : await import('../dist/cli/main.js');
await cli.runCli();
