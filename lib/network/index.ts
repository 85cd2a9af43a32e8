/**
 * lib/network: network modes (none and host today; bridge and port publishing to come). Imports
 * only native, storage and errors; the runtime gets from it only what to do with the network
 * namespace, never a mode.
 */
export { NETWORK_MODES, dockerNetworkMode, netNamespaceFor, networkModeOf, parseNetworkMode, type NetworkMode } from './network-mode.js';
