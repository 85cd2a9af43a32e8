// Unit tests: no root, no kernel state of their own, so files run in parallel.
import { readFileSync } from 'node:fs';

const base = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).ava;

export default { ...base, files: ['test/unit/**/*.test.ts'], concurrency: 2 };
