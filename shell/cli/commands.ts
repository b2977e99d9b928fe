/**
 * The exec CLI: `ssh -p 2200 alice@shell <command>`. Exit 0 ok; 1 refused or failed, with
 * `error: CODE: message` on stderr; 2 usage. `attach` is handed back to the SSH layer, which owns
 * the terminal. Everything printed is inert on a terminal: text through format.ts or inertCell,
 * JSON through inertJson.
 */
import { MAX_PREVIEW_BYTES, MAX_PREVIEW_LINES, PROTOCOL_VERSION, SessionEntry, entryId, opIdSchema } from '../../common/protocol';
import { BUILD } from '../../common/build-info';
import { PROTOCOLS, Protocol } from '../../common/names';
import { BerthError, toBerthError } from '../../common/errors';
import { inertBlock, inertCell, inertJson } from '../../common/terminal-text';
import { ClusterJob, ClusterSession } from '../cluster/view';
import { JOB_HEAD, jobLine, jobRow } from '../jobs-text';
import { auditCommand } from './audit-command';
import { TRASH_USAGE, restoreCommand, trashCommand } from './trash-commands';
import { LIST_FILTER_FLAGS, listFilterOf, matchesList } from './list-filter';
import { watchSessions } from './watch';
import { FLEET_USAGE, runFleetCommand } from './fleet-commands';
import type { CliIo } from './io';
import { Operator, PendingOp, ShellService } from '../service';
import { FlagSpec, LIMIT_FLAGS, Parsed, UsageError, envFlags, intFlag, limitsFromFlags, listFlag, parseFlags, splitWords, strFlag } from './args';
import { AGENT_HEAD, SESSION_HEAD, agentJson, agentRow, attachedSentence, errorLine, othersAttached, previewHeadline, sessionJson, sessionRow, summary, table, versionText } from './format';

export const USAGE = `usage: ssh -p PORT USER@SHELL <command> [--json]

  agents                                   the agents and whether they answer
  list [--agent A] [--state S] [--activity X] [--name GLOB]
                                           sessions on every agent (each filter may repeat, or
                                           take a,b; --activity none: no report yet)
  create --name N [--agent A] [--protocol tcp|udp] [--port P] [--dns D] [LIMITS] [SETUP]
         [--repo URL [--branch B]]
  edit REF [--name N] [--protocol tcp|udp] [--port P] [--dns D] [LIMITS] [SETUP] [--unset-env NAME]
  clone REF [--name N]
  move REF --to AGENT                      stops it and moves its folder to AGENT; same id, name,
                                           command, port and DNS name (fails first if the port
                                           is taken there)
  restart REF | background REF
  kill REF [--yes]                         stops its container; --yes when other operators are
                                           attached to it
  preview REF [--lines N]                  the last N lines (40; at most 500) of its screen,
                                           without attaching
  watch [--json] [list's filters]          every session change as it comes, until you leave
                                           (--json: NDJSON, one line per change)
  ops                                      long ops running (clones, with progress) and ops whose
                                           outcome is not known yet (an agent was slow)
  delete REF --yes                         moves it to its agent's trash (restore brings it back
                                           until it is purged)
${TRASH_USAGE}
  override REF [--reason TEXT]
  audit [--since T] [--operator O] [--session REF] [--op OP] [--limit N]
                                           admins: the audit log, oldest first (T: 10m, 2h, 3d
                                           or an ISO time; N: the most recent, 1000)
  attach REF [--read-only]                 needs ssh -t
  whoami | version | help
${FLEET_USAGE}
REF: a session id, a unique id prefix (4+ characters) or a unique name.
PORT: 0 none, -1 the lowest free from 1001, or a port number.
LIMITS: --memory MB (or 512m, 4g) --cpus N (0.5, 2) --pids N; up to the agent's maximums,
  applied when the session next starts.
SETUP: --command TEXT (what tmux runs in the session; default the agent's; edit --command ''
  goes back to it) --env NAME=VALUE (again for more). Applied when the session next starts.
  These variables are NOT secret: they are stored with the session and shown by list --json.
  Credentials belong in the agent's config (env), which every session gets.
--repo URL: the session starts in a checkout of it (https://, ssh://, git://, user@host:path, or
  a path on the agent's host it allows), on its own branch B (default berth/<name>).
--op-id ID (create, edit, clone, restart, kill, override, background, delete, restore): the op is done
  once per ID; when an agent does not answer in time the outcome is unknown, and the same
  command with the same --op-id waits for it (up to 2 min) and shows it.
Values: a flag takes the next word; a value starting with -- is written --flag=VALUE. An empty
  value is refused, but --dns '' (no DNS name). Numbers are whole numbers (-1, 0, 2200).
`;

export type { CliIo } from './io';

export type CliOutcome = { code: number } | { code: -1; attach: { ref: string; readOnly: boolean } };

const JSON_FLAG: FlagSpec = { json: 'boolean' };
/** The flags of every command that changes something. */
const OP_FLAGS: FlagSpec = { ...JSON_FLAG, 'op-id': 'string' };

/** The operator, with the op id the command gave (--op-id), checked. */
function withOpId(op: Operator, flags: Parsed['flags']): Operator {
  const opId = strFlag(flags['op-id']);
  if (opId === undefined) return op;
  if (!opIdSchema.safeParse(opId).success) throw new UsageError('--op-id must be 8-64 letters, digits, - or _');
  return { ...op, opId };
}

export async function runCommand(line: string, operator: Operator, service: ShellService, io: CliIo): Promise<CliOutcome> {
  try {
    const words = splitWords(line);
    const [cmd = '', ...rest] = words;
    return await dispatch(cmd, rest, operator, service, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`berth: ${inertCell(err.message)}\n\n${USAGE}`);
      return { code: 2 };
    }
    const e = toBerthError(err);
    io.err(errorLine(e.code, e.message));
    return { code: 1 };
  }
}

async function dispatch(cmd: string, rest: string[], op: Operator, svc: ShellService, io: CliIo): Promise<CliOutcome> {
  const printSession = (verb: string, entry: SessionEntry, json: boolean): void => {
    const s = clusterSessionOf(svc, entry);
    io.out(json ? `${inertJson(sessionJson(s))}\n` : summary(verb, s));
  };
  switch (cmd) {
    case 'help':
      parseFlags(rest, {}, 0);
      io.out(USAGE);
      return { code: 0 };
    case 'version': {
      const { flags } = parseFlags(rest, JSON_FLAG, 0);
      io.out(flags.json ? `${inertJson({ ...BUILD, protocol: PROTOCOL_VERSION })}\n` : versionText(BUILD, PROTOCOL_VERSION));
      return { code: 0 };
    }
    case 'agent':
    case 'operator':
      await runFleetCommand(cmd, rest, op, svc, io);
      return { code: 0 };
    case 'whoami': {
      const { flags } = parseFlags(rest, JSON_FLAG, 0);
      io.out(flags.json ? `${inertJson(op)}\n` : `${inertCell(op.name)} (${op.role})\n`);
      return { code: 0 };
    }
    case 'agents': {
      const { flags } = parseFlags(rest, JSON_FLAG, 0);
      const agents = svc.view.agentList();
      if (flags.json) io.out(`${inertJson(agents.map(agentJson))}\n`);
      else io.out(table(AGENT_HEAD, agents.map(agentRow)));
      return { code: 0 };
    }
    case 'list': {
      const { flags } = parseFlags(rest, { ...JSON_FLAG, ...LIST_FILTER_FLAGS }, 0);
      svc.check(op, 'list');
      const filter = listFilterOf(flags);
      const sessions = svc.view.sessions().filter((s) => matchesList(s, filter));
      if (flags.json) io.out(`${inertJson(sessions.map(sessionJson))}\n`);
      else io.out(table(SESSION_HEAD, sessions.map(sessionRow)));
      return { code: 0 };
    }
    case 'create': {
      const { flags } = parseFlags(rest, { ...OP_FLAGS, ...LIMIT_FLAGS, ...SETUP_FLAGS, name: 'string', agent: 'string', protocol: 'string', port: 'string', dns: 'text', repo: 'string', branch: 'string' }, 0);
      const name = strFlag(flags.name);
      if (name === undefined) throw new UsageError('create needs --name N');
      if (flags.branch !== undefined && flags.repo === undefined) throw new UsageError('--branch needs --repo');
      const request = {
        name,
        agent: strFlag(flags.agent),
        protocol: protocolFlag(flags.protocol),
        port: intFlag(flags.port, 'port'),
        dns: strFlag(flags.dns),
        limits: limitsFromFlags(flags),
        command: strFlag(flags.command),
        env: envFlags(flags.env),
        repo: strFlag(flags.repo),
        branch: strFlag(flags.branch),
      };
      const entry = await svc.create(withOpId(op, flags), request, progressPrinter(io, flags.json === true, name));
      printSession('created', entry, flags.json === true);
      return { code: 0 };
    }
    case 'edit': {
      const { flags, positionals } = parseFlags(
        rest,
        { ...OP_FLAGS, ...LIMIT_FLAGS, ...SETUP_FLAGS, command: 'text', 'unset-env': 'list', name: 'string', protocol: 'string', port: 'string', dns: 'text' },
        1,
      );
      const ref = need(positionals[0], 'edit REF');
      const command = strFlag(flags.command);
      const changes = {
        name: strFlag(flags.name),
        protocol: protocolFlag(flags.protocol),
        port: intFlag(flags.port, 'port'),
        dns: strFlag(flags.dns),
        limits: limitsFromFlags(flags),
        command: command === '' ? null : command,
        env: envChanges(flags.env, flags['unset-env']),
      };
      if (Object.values(changes).every((v) => v === undefined)) {
        throw new UsageError('edit needs at least one of --name, --protocol, --port, --dns, --memory, --cpus, --pids, --command, --env, --unset-env');
      }
      printSession('edited', await svc.edit(withOpId(op, flags), ref, changes), flags.json === true);
      return { code: 0 };
    }
    case 'clone': {
      const { flags, positionals } = parseFlags(rest, { ...OP_FLAGS, name: 'string' }, 1);
      const ref = need(positionals[0], 'clone REF');
      const progress = progressPrinter(io, flags.json === true, nameOfRef(svc, ref));
      printSession('cloned into', await svc.clone(withOpId(op, flags), ref, strFlag(flags.name), progress), flags.json === true);
      return { code: 0 };
    }
    case 'move': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, to: 'string' }, 1);
      const ref = need(positionals[0], 'move REF --to AGENT');
      const to = strFlag(flags.to);
      if (to === undefined) throw new UsageError('move needs --to AGENT');
      const id = svc.resolve(ref).id;
      await svc.move(op, ref, to, flags.json ? undefined : (p) => io.err(`moving: ${(p.bytesDone / 1048576).toFixed(0)} MB\n`));
      io.out(flags.json ? `${inertJson({ moved: id, to })}\n` : `moved ${inertCell(id)} to ${inertCell(to)}\n`);
      return { code: 0 };
    }
    case 'restart':
    case 'kill': {
      const { flags, positionals } = parseFlags(rest, cmd === 'kill' ? { ...OP_FLAGS, yes: 'boolean' } : OP_FLAGS, 1);
      const ref = need(positionals[0], `${cmd} REF`);
      if (cmd === 'kill' && flags.yes !== true) refuseKillUnderOthers(svc, op, ref);
      printSession(cmd === 'kill' ? 'killed' : 'restarted', await svc.simple(withOpId(op, flags), cmd, ref), flags.json === true);
      return { code: 0 };
    }
    case 'override': {
      const { flags, positionals } = parseFlags(rest, { ...OP_FLAGS, reason: 'string' }, 1);
      const ref = need(positionals[0], 'override REF');
      printSession('unlocked', await svc.simple(withOpId(op, flags), 'override', ref, strFlag(flags.reason)), flags.json === true);
      return { code: 0 };
    }
    case 'background': {
      const { flags, positionals } = parseFlags(rest, OP_FLAGS, 1);
      const n = await svc.background(withOpId(op, flags), need(positionals[0], 'background REF'));
      io.out(flags.json ? `${inertJson({ detached: n })}\n` : `detached ${n} attach${n === 1 ? '' : 'es'} of ${inertCell(op.name)}\n`);
      return { code: 0 };
    }
    case 'delete': {
      const { flags, positionals } = parseFlags(rest, { ...OP_FLAGS, yes: 'boolean' }, 1);
      const ref = need(positionals[0], 'delete REF --yes');
      if (flags.yes !== true) throw new UsageError('delete stops the session and moves it and its files to the trash: confirm with --yes');
      const id = await svc.delete(withOpId(op, flags), ref);
      io.out(flags.json ? `${inertJson({ deleted: id })}\n` : `deleted ${inertCell(id)}\n`);
      return { code: 0 };
    }
    case 'preview': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, lines: 'string' }, 1);
      const ref = need(positionals[0], 'preview REF');
      const lines = intFlag(flags.lines, 'lines') ?? 40;
      if (lines < 1 || lines > MAX_PREVIEW_LINES) throw new UsageError(`--lines must be 1-${MAX_PREVIEW_LINES}`);
      const p = await svc.preview(op, ref, lines);
      if (flags.json) io.out(`${inertJson({ id: p.session.id, agent: p.session.agent, at: p.at, lines: p.text.split('\n') })}\n`);
      else io.out(`${previewHead(p.session)}${inertBlock(p.text, MAX_PREVIEW_BYTES)}\n`);
      return { code: 0 };
    }
    case 'watch': {
      const { flags } = parseFlags(rest, { ...JSON_FLAG, ...LIST_FILTER_FLAGS }, 0);
      svc.check(op, 'list');
      const filter = listFilterOf(flags);
      if (!io.client) throw new UsageError('watch needs a client that stays');
      const code = await watchSessions(svc.view, filter, flags.json === true, { out: io.out, ...io.client });
      if (code !== 0) io.err(errorLine('TIMEOUT', 'watch: the client reads too slowly; start it again'));
      return { code };
    }
    case 'audit':
      return auditCommand(rest, op, svc, io);
    case 'trash':
      return { code: trashCommand(rest, op, svc, io) };
    case 'restore':
      return { code: await restoreCommand(rest, op, svc, io, OP_FLAGS, withOpId) };
    case 'ops': {
      const { flags } = parseFlags(rest, JSON_FLAG, 0);
      const running = svc.view.jobs();
      const waiting = svc.pendingOps();
      const now = new Date();
      if (flags.json) io.out(`${inertJson({ running: running.map((j) => ({ agent: j.agent, ...j.job })), waiting })}\n`);
      else if (running.length === 0 && waiting.length === 0) io.out('no op is running or waiting for its outcome\n');
      else {
        if (running.length > 0) io.out(`running:\n${table(JOB_HEAD, running.map((j) => jobRow(j, now)))}`);
        if (running.length > 0 && waiting.length > 0) io.out('\n');
        if (waiting.length > 0) io.out(`waiting for their outcome:\n${table(OPS_HEAD, waiting.map(opRow))}`);
      }
      return { code: 0 };
    }
    case 'attach': {
      const { flags, positionals } = parseFlags(rest, { 'read-only': 'boolean' }, 1);
      return { code: -1, attach: { ref: need(positionals[0], 'attach REF'), readOnly: flags['read-only'] === true } };
    }
    case '':
      throw new UsageError('missing command');
    default:
      throw new UsageError(`unknown command: ${cmd}`);
  }
}

/** The flags of a session's command and variables, shared by create and edit. */
const SETUP_FLAGS: FlagSpec = { command: 'string', env: 'list' };

/** An edit's variables: --env NAME=VALUE sets, --unset-env NAME removes; undefined when neither. */
function envChanges(set: Parsed['flags'][string] | undefined, unset: Parsed['flags'][string] | undefined): Record<string, string | null> | undefined {
  const out: Record<string, string | null> = { ...envFlags(set) };
  for (const name of listFlag(unset)) {
    if (name in out) throw new UsageError(`${name} is both set (--env) and removed (--unset-env)`);
    out[name] = null;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The line above a preview (see previewHeadline). */
function previewHead(s: ClusterSession): string {
  return s.entry.kind === 'session' ? `== ${previewHeadline(s)}\n` : '';
}

/** How often a long op's progress is printed, at most (a new phase is, at once). */
const PROGRESS_EVERY_MS = 2000;

/**
 * Prints a long op's progress on stderr (stdout keeps the result alone) once it has run 2 s: a new
 * phase at once, else every 2 s. An op done sooner prints none; nor does --json, for programs.
 */
function progressPrinter(io: CliIo, json: boolean, sourceName: string): ((j: ClusterJob) => void) | undefined {
  if (json) return undefined;
  const started = Date.now();
  let last = { phase: '', at: 0 };
  return (j) => {
    const now = Date.now();
    if (now - started < PROGRESS_EVERY_MS) return;
    if (j.job.phase === last.phase && now - last.at < PROGRESS_EVERY_MS) return;
    last = { phase: j.job.phase, at: now };
    io.err(`${jobLine(j, sourceName, new Date(now))}\n`);
  };
}

/**
 * Without --yes, a kill of a session other operators are attached to is refused (CONFLICT, in the
 * audit) naming them, after the role check. A REF that means no session is left to the op.
 */
function refuseKillUnderOthers(svc: ShellService, op: Operator, ref: string): void {
  let s: ClusterSession;
  try {
    s = svc.resolve(ref);
  } catch {
    return;
  }
  const others = othersAttached(s, op.name);
  if (others.length === 0) return;
  svc.check(op, 'kill', ref);
  const name = s.entry.kind === 'session' ? s.entry.meta.name : s.id;
  throw svc.refused(op, 'kill', ref, new BerthError('CONFLICT', `${attachedSentence(others)} to ${name}: kill ${ref} --yes kills it anyway`));
}

/** The name of the session REF means, as typed if it means none. */
function nameOfRef(svc: ShellService, ref: string): string {
  try {
    const s = svc.resolve(ref);
    return s.entry.kind === 'session' ? s.entry.meta.name : s.id;
  } catch {
    return ref;
  }
}

const OPS_HEAD = ['OP-ID', 'OP', 'AGENT', 'SESSION', 'OPERATOR', 'WAITING SINCE'];

function opRow(p: PendingOp): string[] {
  return [p.opId, p.op, p.agent, p.session?.slice(0, 8) ?? '-', p.operator, p.since].map((v) => inertCell(v));
}

function need(v: string | undefined, usage: string): string {
  if (v === undefined || v === '') throw new UsageError(`usage: ${usage}`);
  return v;
}

function protocolFlag(v: Parsed['flags'][string] | undefined): Protocol | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(PROTOCOLS as readonly string[]).includes(v)) throw new UsageError('--protocol must be tcp or udp');
  return v as Protocol;
}

function clusterSessionOf(svc: ShellService, entry: SessionEntry): ClusterSession {
  const status = svc.view.agent(entry.agent)?.status ?? 'offline';
  return { entry, id: entryId(entry), agent: entry.agent, agentStatus: status, state: status === 'online' ? entry.state : '?' };
}
