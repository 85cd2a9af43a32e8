/**
 * The setup of the Engine test files: an Engine on a store of its own (a temp directory named
 * `prefix…`) and a registry holding busybox:1 (`image`); after the file, its containers removed,
 * the registry stopped and the store deleted. Skipped (by name) without root or a registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Engine } from '../../lib/index.js';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry, registryUnavailable } from '../fixtures/registry.js';

export interface EngineCtx extends ImageRegistry {
  root: string;
  engine: Engine;
  image: string;
}

export function engineFixture(prefix: string) {
  const test = anyTest as TestFn<EngineCtx>;
  const reason = !isRoot ? 'needs root' : registryUnavailable();
  test.before(async (t) => {
    if (reason) return;
    t.context.root = mkdtempSync(join(tmpdir(), prefix));
    Object.assign(t.context, await startImageRegistry(rootfs()));
    t.context.engine = await Engine.open({ root: t.context.root });
    t.context.image = `${t.context.reg.host}/busybox:1`;
  });
  test.after.always(async (t) => {
    if (t.context.engine) for (const r of await t.context.engine.list({ all: true })) await t.context.engine.remove(r.id, { force: true }).catch(() => {});
    await t.context.stop?.();
    if (t.context.root) rmSync(t.context.root, { recursive: true, force: true });
  });
  return { test, rtest: skipIf(reason, test.serial), reason };
}
