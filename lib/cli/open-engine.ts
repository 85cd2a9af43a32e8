import { Engine } from '../engine/index.js';

/**
 * The engine for one command. The store's crash repair (it reads every record) is left to `nsbox
 * serve` and `system prune`, as docker leaves it to the daemon's start: a command's reads already
 * pass over what a crash left. What the CLI makes outlives it (`owned: false`), as docker's.
 */
export const openEngine = (): Promise<Engine> => Engine.open({ repair: false, owned: false });
