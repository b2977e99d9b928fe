/**
 * A session's setup as operators give it (command, variables, project) and its container's
 * environment: the agent's variables (credentials among them: a literal,
 * or a file read at each start so that a rotated key applies at the next start), then the
 * session's own. Secret values go only into the container's environment: never into
 * session.json, a label, a log line or an error (which name the variable and the file, never
 * what it holds).
 */
import { constants, promises as fs } from 'node:fs';
import { BerthError } from '../common/errors';
import { RpcParams, SessionMeta } from '../common/protocol';
import { EnvChanges, MAX_SESSION_ENV, SessionEnv, defaultBranch } from '../common/session-setup';

/** A variable of the agent's config: its value, or the file that holds it. */
export type EnvSource = string | { file: string };

/** Largest secret file read (a key or token is far smaller). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * The variables a container starts with: the agent's (files read now), then the session's own.
 * A name both set is refused when the session was made (see checkSessionEnv), so the agent's
 * always win here. Throws CONFLICT naming the variable and file when a file cannot be read.
 */
export async function containerEnv(agentEnv: Record<string, EnvSource>, sessionEnv: SessionEnv): Promise<Record<string, string>> {
  const out: Record<string, string> = { ...sessionEnv };
  for (const [name, source] of Object.entries(agentEnv)) {
    out[name] = typeof source === 'string' ? source : await readSecretFile(name, source.file);
  }
  return out;
}

/** Refuses session variables the agent sets for every session (BAD_REQUEST, naming them). */
export function checkSessionEnv(agentEnv: Record<string, EnvSource>, sessionEnv: Record<string, unknown>): void {
  const clash = Object.keys(sessionEnv).filter((k) => k in agentEnv);
  if (clash.length > 0) {
    throw new BerthError('BAD_REQUEST', `env: ${clash.join(', ')} ${clash.length === 1 ? 'is' : 'are'} set by the agent's config for every session`);
  }
}

/** A secret file's text, less one trailing line end. Regular files only, at most 64 KiB. */
async function readSecretFile(name: string, file: string): Promise<string> {
  const what = `env ${name}: its file ${file}`;
  let h: fs.FileHandle;
  try {
    h = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new BerthError('CONFLICT', `${what} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) throw new BerthError('CONFLICT', `${what} is not a regular file`);
    if (st.size > MAX_SECRET_FILE_BYTES) throw new BerthError('CONFLICT', `${what} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    const { bytesRead } = await h.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_SECRET_FILE_BYTES) throw new BerthError('CONFLICT', `${what} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    const text = buf.subarray(0, bytesRead).toString('utf8').replace(/\r?\n$/, '');
    if (text.includes('\u0000')) throw new BerthError('CONFLICT', `${what} holds a NUL character`);
    return text;
  } finally {
    await h.close();
  }
}

/** A new session's command, variables and project from its create params (BAD_REQUEST when they do not fit). */
export function sessionSetup(p: RpcParams<'create'>, agentEnv: Record<string, EnvSource>): Pick<SessionMeta, 'command' | 'env' | 'repo'> {
  if (p.branch !== undefined && p.repo === undefined) throw new BerthError('BAD_REQUEST', 'branch: needs repo');
  if (p.env) checkSessionEnv(agentEnv, p.env);
  return {
    ...(p.command !== undefined ? { command: p.command } : {}),
    ...(p.env && Object.keys(p.env).length > 0 ? { env: p.env } : {}),
    ...(p.repo !== undefined ? { repo: { url: p.repo, branch: p.branch ?? defaultBranch(p.name) } } : {}),
  };
}

/** Variables after an edit: a value sets one, null removes it; at most MAX_SESSION_ENV. */
function mergeEnv(env: SessionEnv, changes: EnvChanges): SessionEnv {
  const out: SessionEnv = { ...env };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  if (Object.keys(out).length > MAX_SESSION_ENV) throw new BerthError('BAD_REQUEST', `env: a session has at most ${MAX_SESSION_ENV} variables`);
  return out;
}

/** `meta` with an edit's command (null: back to the agent's) and variables (null: removed) applied. */
export function editedSetup(meta: SessionMeta, p: Pick<RpcParams<'edit'>, 'command' | 'env'>): SessionMeta {
  const next: SessionMeta = { ...meta };
  if (p.command === null) delete next.command;
  else if (p.command !== undefined) next.command = p.command;
  if (p.env) {
    const env = mergeEnv(meta.env ?? {}, p.env);
    if (Object.keys(env).length > 0) next.env = env;
    else delete next.env;
  }
  return next;
}
