/** The shell's config file (`berth shell serve --config FILE`) and the files in its state folder. */
import path from 'node:path';
import { z } from 'zod';
import { loadConfigFile, resolveFrom } from '../common/config';
import { operatorNameSchema } from '../common/names';
import { loginLimitsSchema } from '../common/ssh-guard';
import { upstreamProblem } from './dns';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** An upstream resolver of the managed dnsmasq: "IP" or "IP#PORT"; the error names the entry. */
const upstreamSchema = z.string().superRefine((entry, ctx) => {
  const problem = upstreamProblem(entry);
  if (problem) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} ${problem}` });
});

const operatorSchema = z
  .object({
    name: operatorNameSchema,
    role: z.enum(ROLES, { error: 'must be viewer, operator or admin' }),
    keys: z.array(z.string().min(1)).min(1, { error: 'needs at least one public key' }),
    /** Whether the menu rings the terminal's bell when a session the operator can see starts waiting. */
    bell: z.boolean().default(true),
  })
  .strict();
export type OperatorConfig = z.infer<typeof operatorSchema>;

export const shellConfigSchema = z
  .object({
    listen: z
      .object({ host: z.string().min(1).default('0.0.0.0'), port: z.number().int().min(0).max(65535).default(2200) })
      .strict()
      .prefault({}),
    /** Host key, the key the shell shows agents, agents.json, the DNS hosts file, the audit log. */
    stateDir: z.string().min(1).default('/var/lib/berth/shell'),
    operators: z.array(operatorSchema).min(1, { error: 'needs at least one operator' }),
    dns: z
      .object({
        domain: z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, { error: 'must be a lowercase domain' }).default('berth'),
        /** Default: <stateDir>/dns.hosts. */
        hostsFile: z.string().optional(),
        /**
         * Run and supervise an own dnsmasq answering on this address and port. It answers the
         * domain itself and forwards other names to `upstream`, by default the nameservers of the
         * host's /etc/resolv.conf; [] forwards nothing.
         */
        manage: z
          .object({ listenAddress: z.string().min(1), port: z.number().int().min(1).max(65535), upstream: z.array(upstreamSchema).optional() })
          .strict()
          .nullable()
          .default(null),
        /** An unmanaged dnsmasq's pid file: it is sent SIGHUP after each change. */
        pidFile: z.string().optional(),
      })
      .strict()
      .prefault({}),
    /** Default: <stateDir>/audit.jsonl. */
    auditFile: z.string().optional(),
    /** Before the audit file would pass maxBytes it is renamed `<file>.1` (then .2 … .keep; older ones go). */
    audit: z
      .object({ maxBytes: z.number().int().min(1024).default(10 * 1024 * 1024), keep: z.number().int().min(1).max(100).default(5) })
      .strict()
      .prefault({}),
    /** Every call to an agent answers within this, or fails with TIMEOUT. */
    rpcTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    /** Operators' logins: grace time, and caps on connections not logged in yet (per address, in all). */
    login: loginLimitsSchema.prefault({}),
    log: z
      .object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'), file: z.string().optional() })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.operators.forEach((o, i) => {
      if (seen.has(o.name)) ctx.addIssue({ code: 'custom', path: ['operators', i, 'name'], message: `"${o.name}" appears twice` });
      seen.add(o.name);
    });
  });

export type ShellConfig = z.output<typeof shellConfigSchema> & { hostsFile: string; auditFile: string };

/** Loads and checks a shell config; relative paths are taken from the file's folder. */
export function loadShellConfig(file: string): ShellConfig {
  const cfg = loadConfigFile(file, shellConfigSchema);
  const stateDir = resolveFrom(file, cfg.stateDir);
  return {
    ...cfg,
    stateDir,
    hostsFile: cfg.dns.hostsFile ? resolveFrom(file, cfg.dns.hostsFile) : path.join(stateDir, 'dns.hosts'),
    auditFile: cfg.auditFile ? resolveFrom(file, cfg.auditFile) : path.join(stateDir, 'audit.jsonl'),
    dns: { ...cfg.dns, pidFile: cfg.dns.pidFile ? resolveFrom(file, cfg.dns.pidFile) : undefined },
    log: { ...cfg.log, file: cfg.log.file ? resolveFrom(file, cfg.log.file) : undefined },
  };
}

export const shellPaths = (stateDir: string) => ({
  hostKey: path.join(stateDir, 'host_key'),
  /** The key the shell authenticates to agents with (its public half goes to `authorize-shell`). */
  agentKey: path.join(stateDir, 'agent_key'),
  agents: path.join(stateDir, 'agents.json'),
});
