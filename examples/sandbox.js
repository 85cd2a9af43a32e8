// Runs a shell in a host sandbox: no image needed. The host's /usr, /etc, /lib… are bound
// read-only; /tmp, /proc and /dev are the sandbox's own; it has its own pid, mount, network,
// IPC, UTS and cgroup namespaces. Run as root (or where user namespaces are allowed).
import { Container } from 'nsbox';

const script = process.argv[2] ?? [
  'echo "hello from $(hostname), pid $$"',
  'id',
  'ip -o link 2>/dev/null || cat /proc/net/dev',
  'touch /usr/x 2>/dev/null || echo "/usr is read-only"',
  'echo scratch > /tmp/x && echo "/tmp is writable and private"',
].join('; ');

// (In TypeScript or Node 24+, `await using box = …` removes it at the end of the scope.)
const box = await Container.run({ command: ['/bin/sh', '-c', script], hostname: 'sandbox', stdio: ['ignore', 'inherit', 'inherit'] });
try {
  const { exitCode, signal } = await box.wait();
  console.log(`sandbox ${box.id.slice(0, 12)} exited: ${signal ?? exitCode}`);
  process.exitCode = exitCode ?? 1;
} finally {
  await box.remove();
}
