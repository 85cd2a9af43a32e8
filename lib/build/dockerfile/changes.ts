/**
 * The Dockerfile instructions `docker import --change` (and `docker commit --change`) apply to an
 * image's config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR,
 * with the Dockerfile's exec form (a JSON array) and shell form, and its quoting for ENV and LABEL.
 */
import { posix } from 'node:path';
import { ValidationError } from '../../errors.js';
import type { ContainerConfig } from '../../image/registry/manifest.js';
import { commandForm, jsonArray, keyValues, splitInstruction } from './instruction.js';

const INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

/** Applies `changes` in order to a copy of `config`; a change that is not one of the above is a ValidationError. */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const out: ContainerConfig = structuredClone(config);
  for (const change of changes) applyOne(out, change);
  return out;
}

function applyOne(cfg: ContainerConfig, change: string): void {
  const split = splitInstruction(change);
  const bad = (why: string) => new ValidationError(`invalid change ${JSON.stringify(change)}: ${why}`, 'changes');
  if (!split) throw bad(`expected an instruction (${INSTRUCTIONS.join(', ')})`);
  const { instruction, rest } = split;
  if (!(INSTRUCTIONS as readonly string[]).includes(instruction)) throw bad(`${instruction} is not a valid change command (${INSTRUCTIONS.join(', ')})`);
  if (!rest) throw bad(`${instruction} requires an argument`);
  switch (instruction) {
    case 'CMD':
      cfg.Cmd = commandForm(rest);
      break;
    case 'ENTRYPOINT':
      cfg.Entrypoint = commandForm(rest);
      // As in a Dockerfile: a new entrypoint drops the command inherited with the old one.
      cfg.Cmd = null;
      break;
    case 'ENV': {
      const env = [...(cfg.Env ?? [])];
      for (const [k, v] of keyValues(rest, bad)) {
        const i = env.findIndex((e) => e.slice(0, e.indexOf('=')) === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      cfg.Env = env;
      break;
    }
    case 'LABEL':
      cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(keyValues(rest, bad)) };
      break;
    case 'EXPOSE': {
      const ports: NonNullable<typeof cfg.ExposedPorts> = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of rest.split(/\s+/)) {
        const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!pm) throw bad(`${JSON.stringify(p)} is not a port (80, 80/udp, 8000-8002/tcp)`);
        const from = Number(pm[1]);
        const to = pm[2] === undefined ? from : Number(pm[2]);
        if (from < 1 || to > 65535 || to < from || to - from > 1024) throw bad(`${JSON.stringify(p)} is not a port range in 1-65535`);
        for (let n = from; n <= to; n++) ports[`${n}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
      }
      cfg.ExposedPorts = ports;
      break;
    }
    case 'VOLUME': {
      const dirs = jsonArray(rest) ?? rest.split(/\s+/);
      cfg.Volumes = { ...(cfg.Volumes ?? {}), ...Object.fromEntries(dirs.map((d) => [d, {}])) };
      break;
    }
    case 'ONBUILD':
      cfg.OnBuild = [...(cfg.OnBuild ?? []), rest];
      break;
    case 'STOPSIGNAL':
      cfg.StopSignal = rest;
      break;
    case 'USER':
      cfg.User = rest;
      break;
    case 'WORKDIR':
      // Relative to the previous one, as in a Dockerfile.
      cfg.WorkingDir = posix.resolve(cfg.WorkingDir || '/', rest);
      break;
  }
}
