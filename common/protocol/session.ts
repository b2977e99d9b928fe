/** A session as stored on its agent (session.json) and as seen on the wire. */
import { z } from 'zod';
import { dnsNameSchema, operatorNameSchema, protocolSchema, sessionIdSchema, sessionNameSchema } from '../names';
import { commandSchema, repoSchema, sessionEnvSchema } from '../session-setup';

export const SESSION_FILE_VERSION = 1;

export const limitsSchema = z
  .object({
    memoryMb: z.number().int().min(64).max(1024 * 1024).optional(),
    cpus: z.number().min(0.05).max(1024).optional(),
    pids: z.number().int().min(16).max(1_000_000).optional(),
  })
  .strict();
export type Limits = z.infer<typeof limitsSchema>;

const isoDate = z.iso.datetime({ error: 'must be an ISO date-time' });

/** session.json: validated on every read. */
export const sessionMetaSchema = z
  .object({
    version: z.literal(SESSION_FILE_VERSION),
    id: sessionIdSchema,
    name: sessionNameSchema,
    protocol: protocolSchema,
    /** The port actually reserved: 0 for none. */
    port: z.number().int().min(0).max(65535),
    dns: dnsNameSchema,
    createdAt: isoDate,
    lastAccessedAt: isoDate.nullable(),
    createdBy: z.string().min(1).max(64),
    limits: limitsSchema.optional(),
    /** What tmux runs; absent: the agent's default command. */
    command: commandSchema.optional(),
    /** The session's own variables (not secret), over the agent's. */
    env: sessionEnvSchema.optional(),
    /** The project: checked out at the session's first start, on its own branch. */
    repo: repoSchema.optional(),
  })
  .strict();
export type SessionMeta = z.infer<typeof sessionMetaSchema>;

/** The record written inside a held session lock: who holds it, for what, since when. */
export const lockOwnerSchema = z
  .object({
    operator: z.string().min(1).max(64),
    op: z.string().min(1).max(32),
    since: isoDate,
    pid: z.number().int().positive(),
    agentInstance: z.string().min(1).max(64),
  })
  .strict();
export type LockOwner = z.infer<typeof lockOwnerSchema>;

export const lockInfoSchema = z.object({
  operator: z.string(),
  op: z.string(),
  since: z.string(),
  /** The holder stopped refreshing it or it is older than 24 h: the next operation clears it. */
  stale: z.boolean(),
});
export type LockInfo = z.infer<typeof lockInfoSchema>;

/** `-` stopped, `R` running, `C` connected (someone attached), `L` locked and not running. */
export const sessionStateSchema = z.enum(['-', 'R', 'C', 'L']);
export type SessionState = z.infer<typeof sessionStateSchema>;

/** What the running container was started with, from its labels. */
export const appliedConfigSchema = z.object({
  protocol: protocolSchema,
  port: z.number().int(),
  dns: z.string(),
  /** The session's own limits then (absent on containers of older agents). */
  limits: limitsSchema.optional(),
  /** The hash of its command, variables and project then (see setupHash; absent on older containers). */
  setup: z.string().optional(),
});
export type AppliedConfig = z.infer<typeof appliedConfigSchema>;

export const containerInfoSchema = z.object({
  id: z.string(),
  status: z.string(),
  running: z.boolean(),
  /** Frozen for a moment (a clone copying its home): its programs do not run. Older agents: absent. */
  paused: z.boolean().optional(),
  applied: appliedConfigSchema.nullable(),
});
export type ContainerInfo = z.infer<typeof containerInfoSchema>;

/**
 * What a session's program is doing, as its own reports say (Claude Code's hooks): `working`,
 * `waiting` for input, `permission` (a tool needs approval; the detail says which), `done` (its
 * turn finished), `idle`, `stuck`, `exited`. A session can only ever misreport its own.
 */
export const ACTIVITIES = ['permission', 'waiting', 'stuck', 'done', 'working', 'idle', 'exited'] as const;
export const activitySchema = z.object({
  state: z.enum(ACTIVITIES),
  /** When it entered this state. */
  since: isoDate,
  /** A short note: the tool, the notification's text. */
  detail: z.string().max(200),
});
export type Activity = z.infer<typeof activitySchema>;

/** A session's project at a glance, as its last report said (computed inside its container). */
export const gitGlanceSchema = z.object({
  branch: z.string().max(200),
  /** Commits ahead of and behind its upstream; null without one. */
  ahead: z.number().int().nonnegative().nullable(),
  behind: z.number().int().nonnegative().nullable(),
  /** Changed, staged, untracked or conflicted paths. */
  changed: z.number().int().nonnegative(),
  /** The last commit's subject. */
  subject: z.string().max(200),
});
export type GitGlance = z.infer<typeof gitGlanceSchema>;

export const sessionViewSchema = z.object({
  kind: z.literal('session'),
  agent: z.string(),
  meta: sessionMetaSchema,
  state: sessionStateSchema,
  /** Operator names of the live attaches (one entry per attach). */
  attached: z.array(operatorNameSchema.or(z.string())),
  lock: lockInfoSchema.nullable(),
  container: containerInfoSchema.nullable(),
  /** Running with other protocol/port/dns than session.json says: a restart applies them. */
  restartNeeded: z.boolean(),
  /** What its program last reported; null before any report (older agents: absent). */
  activity: activitySchema.nullable().optional(),
  /** Its project's git state as last reported; null for none (older agents: absent). */
  git: gitGlanceSchema.nullable().optional(),
});
export type SessionView = z.infer<typeof sessionViewSchema>;

/** A session directory whose session.json cannot be read: listed so an operator sees it. */
export const brokenSessionSchema = z.object({
  kind: z.literal('broken'),
  agent: z.string(),
  id: sessionIdSchema,
  reason: z.string(),
  state: sessionStateSchema,
  lock: lockInfoSchema.nullable(),
  container: containerInfoSchema.nullable(),
});
export type BrokenSession = z.infer<typeof brokenSessionSchema>;

export const sessionEntrySchema = z.discriminatedUnion('kind', [sessionViewSchema, brokenSessionSchema]);
export type SessionEntry = z.infer<typeof sessionEntrySchema>;

export function entryId(e: SessionEntry): string {
  return e.kind === 'session' ? e.meta.id : e.id;
}
