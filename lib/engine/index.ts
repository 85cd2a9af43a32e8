/** Engine state: named, persistent container records shared safely by several processes. */
export { ConflictError } from './conflict-error.js';
export { ContainerStore, type ContainerStoreOptions } from './container-store.js';
export { canonicalName, generateName, NAME_PATTERN } from './names.js';
export { processStartTime, processStat, type ProcessStat } from './process-start-time.js';
export { mountsUnder } from './mounts-under.js';
export {
  ExitFileSchema,
  exitFilePath,
  reconcile,
  ShimStateFileSchema,
  shimStateFilePath,
  type ExitFile,
  type ReconcileEnv,
  type ShimStateFile,
} from './reconcile.js';
export {
  ContainerIdSchema,
  ContainerRecordSchema,
  ContainerStateSchema,
  NewContainerRecordSchema,
  newContainerId,
  SupervisorSchema,
  type ContainerRecord,
  type ContainerRecordState,
  type NewContainerRecord,
  type Supervisor,
} from './records.js';
export { parseRestartPolicy, RestartPolicySchema, type RestartPolicy } from './restart-policy.js';
export { Engine, exitCodeOf, type CreateRequest, type EngineEvent, type WaitCondition } from './engine.js';
export { checkState, execFailureCode, failureExitCode, humanDuration, isRunning, statusText, timeAgo } from './container-status.js';
export { ExecInstances, type ExecInstance, type ExecConfig } from './exec-instances.js';
