/**
 * Pure: session limits as operators type them, in the CLI's flags and the menu's form alike.
 * Memory in MB (`512`, `512m`, `4g`), CPUs as a decimal (`0.5`), pids as a whole number.
 */
import { Limits } from '../common/protocol';

export const LIMIT_HINTS = {
  memoryMb: 'a size in MB, like 512, 512m or 4g',
  cpus: 'a number like 0.5 or 2',
  pids: 'a whole number',
} as const;

/** MB from `512`, `512m` or `4g` (binary units); null when it is none of those. */
export function parseMemory(text: string): number | null {
  const m = /^(\d+)([mMgG]?)$/.exec(text.trim());
  return m ? Number(m[1]) * (m[2]?.toLowerCase() === 'g' ? 1024 : 1) : null;
}

/** A non-negative decimal; null otherwise. */
export function parseCpus(text: string): number | null {
  return /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : null;
}

/** A whole number; null otherwise. */
export function parsePids(text: string): number | null {
  return /^\d+$/.test(text.trim()) ? Number(text) : null;
}

const PARSERS: Record<keyof Limits, (t: string) => number | null> = { memoryMb: parseMemory, cpus: parseCpus, pids: parsePids };

/**
 * What is wrong with a typed limit, or null when it is fine: empty (the agent's default), or a
 * number within `max` when the agent told its maximums.
 */
export function limitProblem(key: keyof Limits, text: string, max: Limits | undefined): string | null {
  if (text.trim() === '') return null;
  const v = PARSERS[key](text);
  if (v === null) return `must be ${LIMIT_HINTS[key]}`;
  const top = max?.[key];
  if (top !== undefined && v > top) return `at most ${top} on this agent`;
  return null;
}

/** The limits typed in a form (empty fields left out); undefined when all are empty. */
export function limitsFromText(texts: Record<keyof Limits, string>): Limits | undefined {
  const out: Limits = {};
  for (const k of Object.keys(PARSERS) as Array<keyof Limits>) {
    const v = texts[k].trim() === '' ? null : PARSERS[k](texts[k]);
    if (v !== null) out[k] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
