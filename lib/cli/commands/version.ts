/** nsbox version */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';

export default async function version(): Promise<number> {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`nsbox version ${pkg.version}\n node ${process.version}, linux ${release()}, ${process.arch}\n`);
  return 0;
}
