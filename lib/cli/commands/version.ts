/** nsbox version */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { packagePath } from '../../package-root.js';

export default async function version(): Promise<number> {
  const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string };
  process.stdout.write(`nsbox version ${pkg.version}\n node ${process.version}, linux ${release()}, ${process.arch}\n`);
  return 0;
}
