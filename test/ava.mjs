// `node test/ava.mjs ARGS…`: ava's CLI (as `npx ava ARGS…`) with one fix to its TAP reporter.
//
// ava 7's TAP reporter dies on a run's timeout (and on a worker's process.exit): it hands the
// Error it makes for the pending tests to dumpError, which expects the structured clone a worker
// sends and throws on the missing `originalError` ("Cannot set properties of undefined"). Every
// pending test then goes unnamed and the run prints no summary. ava 8 guards this, but needs
// Node 22. Until then this load hook adds the guard to tap.js as it is loaded: such an error is
// dumped as its name and message. The hook is registered in this process only (ava's workers get
// the config's nodeArguments, not this process's), and changes nothing else; should tap.js no
// longer read as expected, it is loaded unchanged.
import { register } from 'node:module';

const hooks = `
const TAP = /\\/ava\\/lib\\/reporters\\/tap\\.js$/;
const LINE = '\\toriginalError.name = name; // Restore the original name.';
export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!TAP.test(url)) return loaded;
  const text = String(loaded.source);
  if (!text.includes(LINE)) return loaded;
  const guard = '\\tif (originalError === undefined) return {name, message: arguments[0]?.message};\\n';
  return { ...loaded, source: text.replace(LINE, guard + LINE) };
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
// The CLI entry beside the package's main one (the package exports no path to it).
await import(new URL('cli.mjs', import.meta.resolve('ava')).href);
