#!/usr/bin/env node
// nsbox-runc: the OCI runtime CLI (runc's commands), for containerd and Kubernetes (lib/oci/cli.ts).
// Runs its bundle with its code cache when there is one (tools/bundle-runc.mjs), else dist/.
'use strict';
const { existsSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { compileBundle } = require('./compile-bundle.js');

const bundle = join(__dirname, '..', 'dist', 'runc-bundle', 'nsbox-runc.cjs');
const load = async () => (existsSync(bundle) ? compileBundle(bundle, `${bundle}.cache`).run(createRequire(bundle)) : import('../dist/oci/main.js'));
load().then((m) => m.main());
