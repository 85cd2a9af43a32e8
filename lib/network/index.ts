/**
 * lib/network: network modes, the shared model of networks, endpoints and published ports, and
 * docker's spellings of ports. Imports only native, storage and errors; the runtime gets from it
 * only what to do with the network namespace, never a mode.
 */
export { NETWORK_MODES, dockerNetworkMode, netNamespaceFor, networkModeOf, parseNetworkMode, type NetworkMode } from './network-mode.js';
export * from './schemas.js';
export * from './port-spec.js';
export * from './docker-ports.js';
export { NetworkStore, CreateNetworkOptionsSchema, PREDEFINED_NETWORKS, type CreateNetworkOptions, type NetworkStoreOptions } from './network-store.js';
export { Ipam, macForIp, type Allocation, type Endpoint } from './ipam.js';
export { matchesNetworkFilters, matchesLabels, parseUntil, type NetworkFilters } from './network-filters.js';
export { parseCidr, formatCidr, parseIp, formatIp, overlaps, type Cidr } from './cidr.js';
export { readRoutes, DEFAULT_BRIDGE_SUBNET } from './subnet-pools.js';
export { networkJson, networkContainerJson, createOptionsOfBody, PSEUDO_NETWORKS, pseudoNetwork, type NetworkJson, type NetworkContainerJson } from './network-json.js';
