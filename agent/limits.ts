/**
 * Resource limits of session containers. Only two sources count: the agent's config (defaults,
 * and maximums an admin sets) and what an operator asked for in create or edit, kept in
 * session.json where no container can reach it. Requests above a maximum are refused; a session
 * whose limits a later, lower maximum undercuts runs at the maximum.
 */
import { BerthError } from '../common/errors';
import { Limits } from '../common/protocol';

export interface LimitPolicy {
  /** What a session gets for what it did not ask. */
  defaults: Limits;
  /** The most an operator may ask for. */
  max: Limits;
}

const LABELS: Record<keyof Limits, string> = { memoryMb: 'memory (MB)', cpus: 'CPUs', pids: 'pids' };
const KEYS = Object.keys(LABELS) as Array<keyof Limits>;

/** Throws BAD_REQUEST naming the first limit that is above this agent's maximum. */
export function checkRequestedLimits(requested: Limits | undefined, policy: LimitPolicy): void {
  if (!requested) return;
  for (const k of KEYS) {
    const want = requested[k];
    const max = policy.max[k];
    if (want !== undefined && max !== undefined && want > max) {
      throw new BerthError('BAD_REQUEST', `limits: ${LABELS[k]} ${want} is above this agent's maximum of ${max}`);
    }
  }
}

/** What a session's container runs with: its own limits over the defaults, none above a maximum. */
export function effectiveLimits(session: Limits | undefined, policy: LimitPolicy): Limits {
  const out: Limits = { ...policy.defaults, ...(session ?? {}) };
  for (const k of KEYS) {
    const max = policy.max[k];
    const v = out[k];
    if (v !== undefined && max !== undefined && v > max) out[k] = max;
  }
  return out;
}

/** Pids an operator may give a session when the admin set no maximum. */
export const DEFAULT_MAX_PIDS = 32768;

/** The policy from an agent's config: unset maximums are this host's memory and CPUs. */
export function limitPolicy(defaults: Limits, max: Limits | undefined, host: { memoryMb: number; cpus: number }): LimitPolicy {
  return {
    defaults,
    max: { memoryMb: host.memoryMb, cpus: host.cpus, pids: DEFAULT_MAX_PIDS, ...(max ?? {}) },
  };
}
