/** The PATH a container's process is looked up in: its environment's last PATH, else docker's default. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function pathFromEnv(env: string[]): string {
  const p = env.findLast((kv) => kv.startsWith('PATH='));
  return p ? p.slice(5) : DEFAULT_PATH;
}
