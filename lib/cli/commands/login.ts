/**
 * nsbox login [-u USER] [-p PASSWORD | --password-stdin] [SERVER]: the credentials checked against
 * the registry, then stored in docker's config.json (or its credential helper) as `docker login`
 * stores them. SERVER defaults to Docker Hub. On a terminal, a username or password not given is asked
 * for (the password without echo).
 */
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value } from '../args.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export default async function login(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['username', 'u'], kind: 'value' },
    { names: ['password', 'p'], kind: 'value' },
    { names: ['password-stdin'], kind: 'bool' },
  ]);
  if (p.positional.length > 1) throw new ValidationError('"nsbox login" requires at most 1 argument.', 'server');
  const server = p.positional[0] ?? 'docker.io';
  let username = value(p, 'username');
  let password = value(p, 'password');
  const tty = process.stdin.isTTY === true && !flag(p, 'password-stdin');
  if (flag(p, 'password-stdin')) {
    if (password !== undefined) throw new ValidationError('--password and --password-stdin are mutually exclusive', 'password');
    if (!username) throw new ValidationError('Must provide --username with --password-stdin', 'username');
    password = await readStdin();
  } else if (password !== undefined) {
    process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if ((!username || password === undefined) && tty) {
    // docker's prompts, on the terminal only
    const { askLine, askSecret } = await import('../prompt.js');
    username ||= await askLine('Username: ');
    password ??= await askSecret('Password: ');
  }
  if (!username || password === undefined) {
    throw new ValidationError('nsbox login needs --username and --password-stdin (or --password) when its input is not a terminal', 'username');
  }
  if (!password) throw new ValidationError('password is empty', 'password');
  const { login: doLogin } = await import('../../image/registry/login.js');
  const stored = await doLogin(server, { username, password });
  if (!stored.helper) {
    process.stderr.write(`WARNING! Your password will be stored unencrypted in ${stored.path}.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/engine/reference/commandline/login/#credentials-store\n\n`);
  }
  process.stdout.write('Login Succeeded\n');
  return 0;
}
