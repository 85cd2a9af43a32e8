import { hostname, userInfo } from 'node:os';

/** user@host of this process, as a journal and provenance name who did something. */
export function whoAmI(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch (err) {
    // a uid without a passwd entry (a container's): the number says who
    if (!(err instanceof Error)) throw err;
    user = String(process.getuid?.() ?? '?');
  }
  return `${user}@${hostname()}`;
}
