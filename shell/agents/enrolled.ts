/**
 * agents.json in the shell's state folder: the agents this shell connects to, each with the host
 * key fingerprint pinned at enrolment. Written atomically; read with zod.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../common/atomic-file';
import { BerthError, messageOf } from '../../common/errors';
import { parseJson } from '../../common/json';
import { agentIdSchema } from '../../common/names';
import { describeIssue } from '../../common/protocol';

export const agentEntrySchema = z
  .object({
    id: agentIdSchema,
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535),
    /** SHA256:… of the agent's host key; a connection presenting any other key is refused. */
    fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, { error: 'must be an OpenSSH SHA256 fingerprint' }),
    /** Where DNS names of its sessions point (default: host). */
    address: z.string().min(1).optional(),
  })
  .strict();
export type AgentEntry = z.infer<typeof agentEntrySchema>;

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

async function writeAgents(file: string, agents: AgentEntry[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify({ agents }, null, 2)}\n`, 0o600);
}
