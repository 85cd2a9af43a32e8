import { Engine } from '../engine/index.js';

/**
 * The engine for one command. The store's crash repair (it reads every record) is left to `nsbox
 * serve` and `system prune`, as docker leaves it to the daemon's start: a command's reads already
 * pass over what a crash left.
 */
export const openEngine = (): Promise<Engine> => Engine.open({ repair: false });
