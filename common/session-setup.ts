/**
 * What a session runs and with what, as operators give it: its command, its own environment
 * variables (not secret: they are stored in session.json and shown by `list --json`) and its
 * project (a git repository and the session's branch in it). Each is checked here, for the CLI,
 * the menu, the protocol and session.json alike, with an error that names what is wrong.
 *
 * The command and variables only ever reach the container (tmux runs the command there); nothing
 * of them is interpreted on a host. A repository URL is handed to git on the agent's host as one
 * argument after `--`, so only the forms below are accepted: no git transport helper
 * (`ext::`, `fd::`), no option-like word.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** Control characters (C0, DEL, C1): never in a command, a variable's value or a URL. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const commandSchema = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(1000, { error: 'must be at most 1000 characters' })
  .refine((v) => !CONTROL.test(v), { error: 'must be one line without control characters' });

/** Names berth sets itself, or that would change how the container's programs load. */
const RESERVED_ENV = /^(BERTH_.*|HOME|USER|LOGNAME|SHELL|LANG|TERM|LD_.*|NSS_WRAPPER_.*|GIT_CONFIG_.*)$/;
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Most variables a session may carry of its own. */
export const MAX_SESSION_ENV = 64;

export const envNameSchema = z
  .string({ error: 'must be a string' })
  .regex(ENV_NAME_RE, { error: 'must be a variable name: a letter or _, then letters, digits or _ (at most 128)' })
  .refine((v) => !RESERVED_ENV.test(v), { error: 'is set by berth (BERTH_*, HOME, USER, LANG, TERM, LD_*, GIT_CONFIG_* and the like)' });

export const envValueSchema = z
  .string({ error: 'must be a string' })
  .max(4096, { error: 'must be at most 4096 characters' })
  .refine((v) => !v.includes('\u0000'), { error: 'must not contain a NUL character' });

export const sessionEnvSchema = z
  .record(envNameSchema, envValueSchema)
  .refine((e) => Object.keys(e).length <= MAX_SESSION_ENV, { error: `must have at most ${MAX_SESSION_ENV} variables` });
export type SessionEnv = z.infer<typeof sessionEnvSchema>;

/** An edit of the variables: a value sets one, null removes it. */
export const envChangesSchema = z
  .record(envNameSchema, envValueSchema.nullable())
  .refine((e) => Object.keys(e).length <= MAX_SESSION_ENV, { error: `must have at most ${MAX_SESSION_ENV} variables` });
export type EnvChanges = z.infer<typeof envChangesSchema>;

/** `https://…`, `http://…`, `ssh://…`, `git://…`, `file:///…`, `user@host:path` or an absolute path. */
const URL_FORMS = [/^(https?|ssh|git):\/\/[^\s/]+\/\S*$/, /^file:\/\/\/\S+$/, /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/]\S*$/, /^\/\S+$/];

export const repoUrlSchema = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(2048, { error: 'must be at most 2048 characters' })
  .refine((v) => !CONTROL.test(v), { error: 'must not contain control characters' })
  .refine((v) => !v.includes('::') && URL_FORMS.some((re) => re.test(v)), {
    error: 'must be https://…, http://…, ssh://…, git://…, file:///…, user@host:path or an absolute path',
  })
  .refine((v) => !/^https?:\/\/[^/]*@/.test(v) && !/^(ssh|git):\/\/[^/@]*:[^/@]*@/.test(v), {
    error:
      "must not carry a user, password or token in an http(s) URL, or a password in another (it would be stored and shown): give the agent's env a token and name it in repos.tokenEnv",
  });

/** A branch name git accepts, kept to a plain subset: letters, digits, `.`, `_`, `-`, `/`. */
export const branchSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$/, { error: 'must be 1-200 letters, digits, ".", "_", "-" or "/", not starting with "-", "." or "/"' })
  .refine((v) => !/\.\.|\/\/|\/$|\.$|\.lock$|\/\.|\.lock\//.test(v), { error: 'is not a valid git branch name ("..", "//", a trailing "/" or ".", ".lock")' });

export const repoSchema = z.object({ url: repoUrlSchema, branch: branchSchema }).strict();
export type SessionRepo = z.infer<typeof repoSchema>;

/** The host of an https URL (with its port), or null for any other URL. */
export function httpsHost(url: string): string | null {
  const m = /^https:\/\/([^/@]+)\//.exec(url);
  return m?.[1] ?? null;
}

/** Where a session's project is checked out in its home: the repository's last path part, less `.git`. */
export function projectDir(url: string): string {
  const last = url.replace(/\/+$/, '').split(/[/:]/).pop() ?? '';
  const name = last.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
  return name && !name.startsWith('.') ? name : 'project';
}

/** The session's own branch when the operator names none. */
export function defaultBranch(sessionName: string): string {
  return `berth/${sessionName}`;
}

/**
 * A short hash of what a container is set up with (its command, the session's variables, its
 * project): recorded on the container, so that a staged edit of any shows "restart to apply".
 */
export function setupHash(s: { command: string; env: SessionEnv; repo: SessionRepo | null }): string {
  const env = Object.keys(s.env)
    .sort()
    .map((k) => [k, s.env[k]]);
  return createHash('sha256')
    .update(JSON.stringify({ command: s.command, env, repo: s.repo }))
    .digest('hex')
    .slice(0, 16);
}
