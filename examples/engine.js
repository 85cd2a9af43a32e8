// Named, persistent containers without a daemon: the same engine the `nsbox` command uses.
// A host sandbox (no image needed): it runs under nsbox-shim, so it would outlive this script;
// here it is stopped and removed at the end. Run as root: node examples/engine.js
import { Engine } from 'nsbox';

const engine = await Engine.open({ root: process.env.NSBOX_ROOT ?? '/tmp/nsbox-example' });
const web = await engine.create({ name: `demo-${process.pid}`, options: { command: ['/bin/sh', '-c', 'echo up; exec sleep 1000'] } });
await engine.start(web.id);

const proc = await engine.exec(web.id, ['/bin/sh', '-c', 'echo "exec in $(hostname), pid $$"; exit 3']);
proc.stdout.pipe(process.stdout);
console.log('exec exited:', await proc.wait());

await engine.stop(web.id, { timeout: 1 });
for await (const entry of engine.logs(web.id)) process.stdout.write(`log ${entry.time}: ${entry.log}`);
console.log('stopped:', await engine.wait(web.id));
await engine.remove(web.id);
