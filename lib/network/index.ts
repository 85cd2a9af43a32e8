/**
 * lib/network: network modes, the shared model of networks, endpoints and published ports, and
 * docker's spellings of ports. Imports only native, storage and errors; the runtime gets from it
 * only what to do with the network namespace, never a mode.
 */
export { NETWORK_MODES, dockerNetworkMode, netNamespaceFor, networkModeOf, parseNetworkMode, type NetworkMode } from './network-mode.js';
export * from './schemas.js';
export * from './port-spec.js';
export * from './docker-ports.js';
