#!/usr/bin/env node
// The nsbox CLI: `npx nsbox …` in a checkout, `nsbox …` after a global install.
import '../dist/cli/main.js';
