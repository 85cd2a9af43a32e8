#!/usr/bin/env node
// The nsbox CLI: `npx nsbox …` in a checkout, `nsbox …` after a global install. It runs the CLI's
// bundle (tools/bundle-cli.mjs, built with dist/) with its code cache when there is one: it starts
// in a fraction of the time of dist/'s few hundred modules. CommonJS (bin/package.json), so that
// Node does not start its ES module loader for the entry point; without the bundle it imports dist/.
'use strict';
const { existsSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { compileBundle } = require('./compile-bundle.js');

const bundle = join(__dirname, '..', 'dist', 'cli-bundle', 'nsbox.cjs');
const load = async () => (existsSync(bundle) ? compileBundle(bundle, `${bundle}.cache`).run(createRequire(bundle)) : import('../dist/cli/main.js'));
load().then((cli) => cli.runCli());
