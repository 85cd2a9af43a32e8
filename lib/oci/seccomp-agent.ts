/**
 * A seccomp agent's part of the plan (runtime-spec `linux.seccomp.listenerPath`): the socket the
 * spawn sends the filter's listener fd to, and the container process state that goes with it, with
 * U+0001 where the process's pid goes (the spawn knows it only after clone; JSON.stringify never
 * writes that byte raw, so it cannot stand for anything else).
 */
import type { SpawnPlan } from '../native.js';
import type { SeccompSetup } from './process-ops.js';

const PID = '\u0001';

export interface AgentStateOptions {
  ociVersion: string;
  id: string;
  bundle: string;
  annotations?: Record<string, string> | undefined;
  /** 'creating' for the init (sent during create), 'running' for an exec. */
  status: 'creating' | 'running';
  /** The container's init, for an exec; absent: the process itself is the init. */
  initPid?: number;
  metadata?: string | undefined;
}

/** runtime-spec's containerProcessState, as the template the spawn fills in. */
export function agentStateTemplate(o: AgentStateOptions): string {
  const j = JSON.stringify;
  const state = `{"ociVersion":${j(o.ociVersion)},"id":${j(o.id)},"status":${j(o.status)},"pid":${o.initPid ?? PID},"bundle":${j(o.bundle)}${o.annotations ? `,"annotations":${j(o.annotations)}` : ''}}`;
  return `{"ociVersion":${j(o.ociVersion)},"fds":["seccompFd"],"pid":${PID}${o.metadata !== undefined ? `,"metadata":${j(o.metadata)}` : ''},"state":${state}}`;
}

/** The plan fields for a filter with a listener (none without one). */
export function agentPlanFields(seccomp: SeccompSetup | undefined, state: Omit<AgentStateOptions, 'metadata'>): Pick<SpawnPlan, 'seccompListener' | 'seccompState'> {
  if (seccomp?.listenerPath === undefined) return {};
  return { seccompListener: seccomp.listenerPath, seccompState: agentStateTemplate({ ...state, metadata: seccomp.listenerMetadata }) };
}
