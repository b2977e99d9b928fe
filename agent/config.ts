/** The agent's config file (`berth agent serve --config FILE`). */
import path from 'node:path';
import { z } from 'zod';
import { loadConfigFile, resolveFrom } from '../common/config';
import { agentIdSchema } from '../common/names';
import { limitsSchema } from '../common/protocol';
import { envNameSchema, envValueSchema } from '../common/session-setup';
import { loginLimitsSchema } from '../common/ssh-guard';

/**
 * The containers' user when the agent runs as root: the session image's own user, above the
 * range of regular accounts (Debian's useradd stops at 60000) and below systemd's dynamic users
 * (61184 on), and under 65536, so an engine that remaps user namespaces can still map it.
 */
export const DEFAULT_SESSION_USER = { uid: 61000, gid: 61000 } as const;

/** A container path a mount may take: absolute, not the home, not /, /proc, /sys, /dev or /run/berth. */
const mountTarget = z
  .string()
  .regex(/^\/[A-Za-z0-9._/-]+$/, { error: 'must be an absolute path of letters, digits, ".", "_", "-" and "/"' })
  .refine((t) => !/^\/(proc|sys|dev|run\/berth)(\/|$)/.test(t) && t !== '/' && !/\/\.\.?(\/|$)/.test(t) && t.replace(/\/+$/, '') !== '/home/claude', {
    error: 'must not be /, the home (/home/claude), /proc, /sys, /dev or /run/berth',
  });
const mountSchema = z.object({ source: z.string().min(1), target: mountTarget }).strict();

const labelKey = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'must be a lowercase label key' });

export const agentConfigSchema = z
  .object({
    /** This agent's name in the cluster; also the value of the berth.agent container label. */
    id: agentIdSchema,
    listen: z
      .object({
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(2222),
      })
      .strict()
      .prefault({}),
    /** Where session homes live: <root>/<uuid>/. */
    root: z.string().min(1).default('/home/claude'),
    /** Host key and trusted shell keys live here. */
    stateDir: z.string().min(1).default('/var/lib/berth/agent'),
    /** Host address that session ports are published on. */
    publishAddress: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' }).default('0.0.0.0'),
    image: z.string().min(1).default('berth-session:latest'),
    /** What tmux runs in each session; a login shell where the image lacks it. */
    command: z.string().min(1).max(1000).default('claude'),
    /**
     * Variables every session gets (credentials: ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN,
     * GH_TOKEN…): a literal, or `{ "file": PATH }` read at each container start. Never stored with
     * a session, never logged.
     */
    env: z.record(envNameSchema, z.union([envValueSchema, z.object({ file: z.string().min(1) }).strict()])).default({}),
    /** Host paths every session sees read-only (a shared credentials folder, a CA bundle). */
    mounts: z.array(mountSchema).max(32).default([]),
    /** Where projects come from: bare mirrors kept on the host, one per repository URL. */
    repos: z
      .object({
        /** Where the mirrors live; default <stateDir>/mirrors. */
        mirrorDir: z.string().min(1).optional(),
        /** Folders whose repositories may be named by path (file:///… or /…); none by default. */
        allowLocal: z.array(z.string().min(1)).default([]),
        /** A mirror fetched this recently is used as it is by the next create. */
        refreshSeconds: z.number().int().min(0).max(86400).default(300),
        /** The variable (of `env`) whose value is the token for https repositories, if any. */
        tokenEnv: envNameSchema.nullable().default(null),
      })
      .strict()
      .prefault({}),
    /** Resolvers handed to containers (`--dns`): the cluster's dnsmasq. */
    dnsServers: z.array(z.union([z.ipv4(), z.ipv6()])).default([]),
    /** What each session gets unless an operator asked for other limits. */
    limits: limitsSchema.default({ memoryMb: 4096, cpus: 2, pids: 1024 }),
    /** The most an operator may ask for; unset: the host's memory and CPUs, 32768 pids. */
    maxLimits: limitsSchema.optional(),
    /**
     * uid:gid the containers run as; default: the agent's own, or DEFAULT_SESSION_USER when it is
     * root. Best a uid no host account has: a session that escaped its container would own that
     * account's files.
     */
    user: z.object({ uid: z.number().int().min(1), gid: z.number().int().min(1) }).strict().optional(),
    /** The bridge network every session container joins; made at start if missing, with inter-container traffic off. */
    network: z
      .string()
      .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, { error: 'must be a Docker network name (letters, digits, _ . -)' })
      .default('berth'),
    /** Session containers get a read-only root filesystem; the home and a bounded /tmp stay writable. */
    readOnlyRoot: z.boolean().default(true),
    dockerSocket: z.string().min(1).default('/var/run/docker.sock'),
    /** Labelled containers no session owns are removed once seen for this long. */
    orphanGraceSeconds: z.number().int().min(0).max(86400).default(120),
    /** A lock nobody refreshed for this long is stale. */
    lockStaleSeconds: z.number().int().min(2).max(3600).default(10),
    maxSessions: z.number().int().min(1).nullable().default(null),
    /** A session whose program said it is working and then nothing for this long shows as stuck. */
    stuckAfterSeconds: z.number().int().min(10).max(86400).default(600),
    /** A session no hook reports for (any command but Claude Code) whose pane printed nothing for this long shows as idle. */
    idleAfterSeconds: z.number().int().min(1).max(86400).default(30),
    /**
     * A folder shared by the agents of one host that publish on the same address: each claims its
     * sessions' ports there, so none hands out a port another reserved. Null: this agent only.
     */
    portClaims: z.string().min(1).nullable().default(null),
    /** Shells' logins: grace time, and caps on connections not logged in yet (per address, in all). */
    login: loginLimitsSchema.prefault({}),
    /**
     * How long a deleted session stays in the trash (restorable) before it is purged; fractions
     * allowed (0.01: 36 s); 0: delete for good at once.
     */
    trashHours: z.number().min(0).max(8760).default(24),
    /** Extra labels on every container (tests mark theirs with one). */
    extraLabels: z.record(labelKey, z.string().max(256)).default({}),
    log: z
      .object({
        level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
        file: z.string().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.repos.tokenEnv !== null && !(c.repos.tokenEnv in c.env)) {
      ctx.addIssue({ code: 'custom', path: ['repos', 'tokenEnv'], message: `names ${c.repos.tokenEnv}, which env does not set` });
    }
    for (const k of ['memoryMb', 'cpus', 'pids'] as const) {
      const [given, max] = [c.limits[k], c.maxLimits?.[k]];
      if (given !== undefined && max !== undefined && given > max) {
        ctx.addIssue({ code: 'custom', path: ['limits', k], message: `is above maxLimits.${k} (${max})` });
      }
    }
  });

export type AgentConfig = z.output<typeof agentConfigSchema>;

/** Loads and checks an agent config; relative paths are taken from the file's folder. */
export function loadAgentConfig(file: string): AgentConfig {
  const cfg = loadConfigFile(file, agentConfigSchema);
  return {
    ...cfg,
    root: resolveFrom(file, cfg.root),
    stateDir: resolveFrom(file, cfg.stateDir),
    portClaims: cfg.portClaims === null ? null : resolveFrom(file, cfg.portClaims),
    env: Object.fromEntries(Object.entries(cfg.env).map(([k, v]) => [k, typeof v === 'string' ? v : { file: resolveFrom(file, v.file) }])),
    mounts: cfg.mounts.map((m) => ({ ...m, source: resolveFrom(file, m.source) })),
    repos: {
      ...cfg.repos,
      mirrorDir: resolveFrom(file, cfg.repos.mirrorDir ?? path.join(cfg.stateDir, 'mirrors')),
      allowLocal: cfg.repos.allowLocal.map((d) => resolveFrom(file, d)),
    },
    log: { ...cfg.log, file: cfg.log.file ? resolveFrom(file, cfg.log.file) : undefined },
  };
}

export function hostKeyPath(cfg: Pick<AgentConfig, 'stateDir'>): string {
  return path.join(cfg.stateDir, 'host_key');
}

export function trustedKeysPath(cfg: Pick<AgentConfig, 'stateDir'>): string {
  return path.join(cfg.stateDir, 'trusted_shell_keys');
}
