/** nsbox inspect CONTAINER|IMAGE [...]: the records as JSON (containers first, then images). */
import { imageInspect } from '../../api/image-json.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { healthOf } from '../../engine/health.js';
import { parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';

export default async function inspect(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['format', 'f'], kind: 'value' }, { names: ['type'], kind: 'value' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox inspect" requires at least 1 argument.', 'name');
  const engine = await openEngine();
  const out: unknown[] = [];
  let failed = 0;
  for (const ref of p.positional) {
    const record = await engine.get(ref).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
    if (record) {
      const pid = engine.pidOf(record);
      // docker's State.Health, as the API's inspect has it (none without a healthcheck).
      const health = healthOf(record);
      out.push({ ...record, ...(pid ? { pid } : {}), ...(health ? { health } : {}) });
      continue;
    }
    const image = await engine.images.get(ref).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
    if (image) out.push(imageInspect(image));
    else {
      failed++;
      process.stderr.write(`Error: No such object: ${ref}\n`);
    }
  }
  process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
  return failed ? 1 : 0;
}
