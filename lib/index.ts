/** nsbox: Linux containers inside Node.js. The public API. */
export { Container, type ContainerOptions, type ReuseOptions } from './container.js';
export { ReusableContainer } from './reusable-container.js';
export type { ContainerState, ContainerDeps } from './runtime/container.js';
export { JoinedContainer, type RunningContainer } from './runtime/joined-container.js';
export type { ImageResolver, ResolvedImage } from './runtime/image-source.js';
export { ContainerProcess, type ExitStatus } from './runtime/process.js';
export type { ExecOptions, Mount, IdMapEntry } from './runtime/options.js';
export type { SignalName } from './runtime/signals.js';
export { NsboxError, ValidationError, NotFoundError, InvalidStateError, NotModifiedError } from './errors.js';
export * as raw from './raw.js';
export {
  Cgroup, DEFAULT_DEVICE_RULES, detectCgroups, parseBytes,
  type CgroupLayout, type CgroupMode, type CgroupOptions, type CgroupStats, type CgroupEvent, type DeviceRule, type Resources,
} from './cgroup/index.js';
export type { PullOptions, PullProgress } from './image/image.js';
export type { PushOptions, PushProgress, PushResult } from './image/push.js';
export { Image } from './image-build.js';
export {
  importImage, applyChanges, buildImage, parseDockerfile, DockerfileParseError, RunFailedError,
  type ImportImageOptions, type BuildOptions, type BuildProgress,
} from './build/index.js';
export { parseReference, type Reference } from './image/reference.js';
export { RegistryError, DigestMismatchError } from './image/registry/index.js';
export { ArchiveError } from './image/archive/archive-error.js';
export { CAPABILITIES, DEFAULT_CAPABILITIES, type Capability } from './runtime/capabilities.js';
export { defaultProfile as defaultSeccompProfile, parseSeccompProfile, type SeccompProfile } from './runtime/seccomp/index.js';
export { Engine, type CreateRequest, type EngineEvent, type WaitCondition } from './engine/index.js';
export {
  ContainerStore, ConflictError, ContainerRecordSchema, canonicalName, generateName, parseRestartPolicy, processStartTime,
  type ContainerRecord, type NewContainerRecord, type ContainerStoreOptions, type Supervisor,
} from './engine/index.js';
export { Network, type NetworkDeps } from './network.js';
export {
  NetworkConflictError,
} from './errors.js';
export type {
  CreateNetworkOptions, NetworkFilters, NetworkRecord, NetworkOptions, NetworkOptionsInput, NetworkState, EndpointState, PortBinding, PortBindingInput,
} from './network/index.js';
export type { NetworkJson } from './network/network-json.js';
