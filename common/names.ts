/**
 * The rules for operator-given values: session names, DNS names, ports, protocols and ids.
 * One place, so the agent, the shell and the menu's as-you-type checks agree.
 */
import { z } from 'zod';

export const SESSION_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A DNS label: lowercase letters, digits and inner hyphens, 1–63 characters. */
export const DNS_NAME_RE = /^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const PROTOCOLS = ['tcp', 'udp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Lowest port that `-1` (pick any) hands out. */
export const AUTO_PORT_MIN = 1001;
export const PORT_MAX = 65535;

export const sessionIdSchema = z
  .string({ error: 'must be a string' })
  .regex(UUID_RE, { error: 'must be a lowercase uuid' });

export const sessionNameSchema = z
  .string({ error: 'must be a string' })
  .regex(SESSION_NAME_RE, { error: 'must be 1-64 letters, digits, "-" or "_"' });

/** Empty string means "no DNS name". */
export const dnsNameSchema = z
  .string({ error: 'must be a string' })
  .refine((v) => v === '' || DNS_NAME_RE.test(v), {
    error: 'must be empty or a lowercase hostname label (a-z, 0-9, inner "-", at most 63)',
  });

/** 0 = no port, -1 = lowest free port from 1001, else an explicit port 1-65535. */
export const portRequestSchema = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .refine((p) => p === 0 || p === -1 || (p >= 1 && p <= PORT_MAX), {
    error: 'must be 0 (none), -1 (any free from 1001) or 1-65535',
  });

export const protocolSchema = z.enum(PROTOCOLS, { error: 'must be "tcp" or "udp"' });

/** An agent's name in the cluster (also its containers' berth.agent label). */
export const agentIdSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: 'must be 1-32 of a-z, 0-9, "-"' });

/** The name a clone gets unless one is given: the source's with "-copy", kept a valid name. */
export function cloneName(source: string): string {
  const suffix = '-copy';
  return `${source.slice(0, 64 - suffix.length)}${suffix}`;
}

/** An operator name, as used for SSH user names and audit records. */
export const operatorNameSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[a-z_][a-z0-9_.-]{0,31}$/, { error: 'must be a lowercase user name (a-z, 0-9, "_", ".", "-")' });

/** Checks one value against a schema and returns the first problem as text, or null. */
export function problemWith(schema: z.ZodType, value: unknown): string | null {
  const r = schema.safeParse(value);
  return r.success ? null : (r.error.issues[0]?.message ?? 'is invalid');
}
