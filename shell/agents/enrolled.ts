/**
 * agents.json in the shell's state folder: the agents this shell connects to, each with the host
 * key fingerprint pinned at enrolment, and for an agent behind a bastion the bastion's address and
 * pinned host key. Written atomically; read with zod.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../common/atomic-file';
import { BerthError, messageOf } from '../../common/errors';
import { parseJson } from '../../common/json';
import { agentIdSchema } from '../../common/names';
import { describeIssue } from '../../common/protocol';

/** A bastion's address as an entry names it: `user@host:port`. */
export interface JumpHost {
  user: string;
  host: string;
  port: number;
}

/** A bastion as a link uses it: its address and the host key pinned for it. */
export interface PinnedJump extends JumpHost {
  fingerprint: string;
}

const JUMP_USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const HOST_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Parses `user@host:port` (an IPv6 host in brackets: `user@[::1]:22`). Pure; on a bad string says
 * which part is wrong and what it must be, without the string's own prefix.
 */
export function parseJump(text: string): { ok: true; jump: JumpHost } | { ok: false; problem: string } {
  const bad = (problem: string) => ({ ok: false as const, problem });
  const at = text.indexOf('@');
  if (at === -1) return bad('must be user@host:port (no "@" in it)');
  const user = text.slice(0, at);
  if (!JUMP_USER_RE.test(user)) {
    return bad(`user ${JSON.stringify(user)} must be 1-32 of a-z, 0-9, "_", "-", starting with a-z or "_"`);
  }
  const rest = text.slice(at + 1);
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) return bad(`host ${JSON.stringify(rest)} opens "[" but never closes it`);
    host = rest.slice(1, close);
    if (!net.isIPv6(host)) return bad(`host ${JSON.stringify(host)} in brackets must be an IPv6 address`);
    if (rest[close + 1] !== ':') return bad('must end with ":port" after the host');
    portText = rest.slice(close + 2);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon === -1) return bad('must end with ":port" after the host');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) return bad(`host ${JSON.stringify(host)}: an IPv6 address goes in brackets, user@[::1]:22`);
    const hostProblem = checkHost(host);
    if (hostProblem) return bad(hostProblem);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return bad(`port ${JSON.stringify(portText)} must be a number from 1 to 65535`);
  return { ok: true, jump: { user, host, port } };
}

/** Null for a hostname or an IPv4 address, else what is wrong with `host`. */
function checkHost(host: string): string | null {
  if (host === '') return 'the host is missing between "@" and ":port"';
  if (/^[0-9.]+$/.test(host)) return net.isIPv4(host) ? null : `host ${JSON.stringify(host)} is not a valid IPv4 address`;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length > 253 || !name.split('.').every((label) => HOST_LABEL_RE.test(label))) {
    return `host ${JSON.stringify(host)} must be a hostname (labels of a-z, 0-9 and inner "-", at most 63 each) or an IP address`;
  }
  return null;
}

/** "SHA256:…", as OpenSSH prints a host key's fingerprint. */
export const fingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, { error: 'must be an OpenSSH SHA256 fingerprint' });

export const agentEntrySchema = z
  .object({
    id: agentIdSchema,
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535),
    /** SHA256:… of the agent's host key; a connection presenting any other key is refused. */
    fingerprint: fingerprintSchema,
    /** Where DNS names of its sessions point (default: host). */
    address: z.string().min(1).optional(),
    /** Drained by an admin: it takes no new sessions; those it has keep running. */
    drained: z.boolean().optional(),
    /** `user@host:port` of a bastion the shell reaches the agent through (host and port as the bastion sees them). */
    jump: z
      .string()
      .superRefine((v, ctx) => {
        const r = parseJump(v);
        if (!r.ok) ctx.addIssue({ code: 'custom', message: r.problem });
      })
      .optional(),
    /** SHA256:… of the bastion's host key, pinned like the agent's. */
    jumpFingerprint: fingerprintSchema.optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.jump !== undefined && e.jumpFingerprint === undefined) {
      ctx.addIssue({ code: 'custom', path: ['jumpFingerprint'], message: 'is required with jump (the bastion\'s pinned host key)' });
    }
    if (e.jump === undefined && e.jumpFingerprint !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['jump'], message: 'is required with jumpFingerprint' });
    }
  });
export type AgentEntry = z.infer<typeof agentEntrySchema>;

/** The entry's bastion with its pinned key, or undefined for an agent reached directly. */
export function jumpOf(entry: AgentEntry): PinnedJump | undefined {
  if (entry.jump === undefined || entry.jumpFingerprint === undefined) return undefined;
  const r = parseJump(entry.jump);
  // The schema parsed this entry: a jump that does not parse never gets here.
  if (!r.ok) throw new BerthError('INTERNAL', `agent ${entry.id}: jump ${r.problem}`);
  return { ...r.jump, fingerprint: entry.jumpFingerprint };
}

const fileSchema = z.object({ agents: z.array(agentEntrySchema) }).strict();

/** The enrolled agents; none when the file does not exist. Throws BAD_REQUEST naming the file. */
export async function readAgents(file: string): Promise<AgentEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new BerthError('INTERNAL', `read ${file}: ${messageOf(err)}`, { cause: err });
  }
  const r = parseJson(text, fileSchema);
  if (!r.ok) throw new BerthError('BAD_REQUEST', `${file}: ${r.problem}`);
  return r.value.agents;
}

/** Adds or replaces (by id) one agent. Returns whether it was new. */
export async function upsertAgent(file: string, entry: AgentEntry): Promise<'added' | 'replaced'> {
  const parsed = agentEntrySchema.safeParse(entry);
  if (!parsed.success) throw new BerthError('BAD_REQUEST', describeIssue(parsed.error));
  const agents = await readAgents(file);
  const i = agents.findIndex((a) => a.id === entry.id);
  if (i >= 0) agents[i] = parsed.data;
  else agents.push(parsed.data);
  await writeAgents(file, agents);
  return i >= 0 ? 'replaced' : 'added';
}

/** Removes one agent. Throws NOT_FOUND if it is not enrolled. */
export async function removeAgent(file: string, id: string): Promise<void> {
  const agents = await readAgents(file);
  const rest = agents.filter((a) => a.id !== id);
  if (rest.length === agents.length) throw new BerthError('NOT_FOUND', `agent ${id} is not enrolled`);
  await writeAgents(file, rest);
}

/**
 * Writes the whole list, each entry checked and every id once. Throws BAD_REQUEST naming the
 * entry, writing nothing.
 */
export async function writeAgentsFile(file: string, agents: AgentEntry[]): Promise<void> {
  const r = fileSchema.safeParse({ agents });
  if (!r.success) throw new BerthError('BAD_REQUEST', describeIssue(r.error));
  const ids = new Set<string>();
  for (const a of r.data.agents) {
    if (ids.has(a.id)) throw new BerthError('BAD_REQUEST', `agent ${a.id} is enrolled twice`);
    ids.add(a.id);
  }
  await writeAgents(file, r.data.agents);
}

async function writeAgents(file: string, agents: AgentEntry[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify({ agents }, null, 2)}\n`, 0o600);
}
