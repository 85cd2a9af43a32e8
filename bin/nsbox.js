#!/usr/bin/env node
// The nsbox CLI: `npx nsbox …` in a checkout, `nsbox …` after a global install. It runs the CLI's
// bundle (tools/bundle-cli.mjs, built with dist/) when there is one: it loads in a fraction of the
// time of dist/'s few hundred modules.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/cli-bundle/nsbox.js', import.meta.url);
await import(existsSync(bundle) ? bundle.href : '../dist/cli/main.js');
