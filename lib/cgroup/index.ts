export { Cgroup, parseResources, type CgroupOptions, type CgroupPruneOptions, type RemoveOptions } from './cgroup.js';
export { compileDeviceRules, DEFAULT_ALLOWED_DEVICES, DEFAULT_DEVICE_RULES, type DeviceRule } from './devices.js';
export { detectCgroups, hierarchyDir, type CgroupLayout, type CgroupMode, type ControllerInfo, type DetectOptions } from './detect.js';
export type { CgroupDriver, CgroupEvent, CgroupPlacement, CgroupStats, CpuStats, IoStats, KillOptions, MemoryStats, PidsStats, WatchOptions } from './driver.js';
export { cgroupParent, DEFAULT_CGROUP_PARENT, driverFromPaths, makeDriver, type DriverKind } from './paths.js';
export type { PruneOptions } from './prune.js';
export {
  blkioWeightToIoWeight,
  cpusToQuota,
  parseBytes,
  ResourcesSchema,
  sharesToWeight,
  weightToShares,
  type BlkioDevice,
  type ParsedResources,
  type Resources,
} from './resources.js';
export { CgroupV1Driver, V1_CONTROLLERS, type V1DriverOptions, type V1Hierarchy } from './v1.js';
export { CgroupV2Driver, V2_CONTROLLERS, type V2DriverOptions } from './v2.js';
