/**
 * HEALTHCHECK: `NONE`, or `CMD` in either form with docker's flags, as the image config's
 * `Healthcheck` (durations in nanoseconds; a flag left out or `0` keeps docker's default).
 */
import { ValidationError } from '../errors.js';
import { goDurationNs } from '../go-duration.js';
import { commandForm } from './dockerfile/instruction.js';
import type { DockerfileNode } from './dockerfile/parse.js';

export const HEALTHCHECK_FLAGS = ['interval', 'timeout', 'start-period', 'start-interval', 'retries'] as const;

const bad = (node: DockerfileNode, why: string) => new ValidationError(`Dockerfile:${node.line}: ${node.keyword} ${why}`, 'dockerfile');

function duration(node: DockerfileNode, v: string): number {
  const ns = goDurationNs(v);
  if (ns === undefined || ns < 0) throw bad(node, `: invalid duration ${JSON.stringify(v)}`);
  return Math.round(ns);
}

export function healthcheckConfig(node: DockerfileNode, flags: Map<string, string>): Record<string, unknown> {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(node.args);
  const kind = m?.[1]?.toUpperCase();
  if (kind === 'NONE') {
    if (m![2] || flags.size) throw bad(node, 'NONE takes no other arguments');
    return { Test: ['NONE'] };
  }
  if (kind !== 'CMD') throw bad(node, 'requires NONE or CMD');
  const rest = m![2]!;
  if (!rest) throw bad(node, 'CMD requires a command');
  const json = commandForm(rest);
  const check: Record<string, unknown> = { Test: rest.startsWith('[') && json[0] !== '/bin/sh' ? ['CMD', ...json] : ['CMD-SHELL', rest] };
  const put = (key: string, flag: string) => {
    const v = flags.get(flag);
    if (v !== undefined && v !== '0') check[key] = duration(node, v);
  };
  put('Interval', 'interval');
  put('Timeout', 'timeout');
  put('StartPeriod', 'start-period');
  put('StartInterval', 'start-interval');
  const r = flags.get('retries');
  if (r !== undefined) {
    if (!/^\d+$/.test(r)) throw bad(node, `: --retries must be a number, not ${JSON.stringify(r)}`);
    if (Number(r) > 0) check['Retries'] = Number(r);
  }
  return check;
}
