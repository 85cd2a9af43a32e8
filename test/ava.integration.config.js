// Integration tests: root, the real kernel, the built shim. One file at a time: they count the
// host's mounts, cgroups and /run/nsbox, which a file running beside them would change.
import { readFileSync } from 'node:fs';

const base = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).ava;

export default { ...base, files: ['test/integration/**/*.test.ts'], concurrency: 1 };
