/**
 * got, loaded on its first use. It is a third of the CLI's code (tools/bundle-cli.mjs keeps it in
 * got.cjs) and only commands that reach a server need it (a registry, ADD of a URL): imported
 * statically, every command that opens the engine evaluated it (~40-75 ms of a `run` here).
 */
import type * as GotModule from 'got';

let loaded: Promise<typeof GotModule> | undefined;

export const loadGot = (): Promise<typeof GotModule> => (loaded ??= import('got'));
