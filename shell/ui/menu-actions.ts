/**
 * What the menu's keys do, through a MenuContext (no blessed here): the ops, each run in the
 * background with its result on the status line, and the dialogs that ask for their input first.
 */
import { BerthError, ErrorCode } from '../../common/errors';
import { cloneName, dnsNameSchema, portRequestSchema, problemWith, Protocol, sessionNameSchema } from '../../common/names';
import { branchSchema, commandSchema, repoUrlSchema } from '../../common/session-setup';
import type { Limits } from '../../common/protocol';
import type { ClusterSession } from '../cluster/view';
import { refusesSessions } from '../cluster/placement';
import { attachedSentence, othersAttached } from '../cli/format';
import { limitProblem, limitsFromText } from '../limits-text';
import type { Action } from '../roles';
import type { Operator, ShellService } from '../service';
import type { Dialogs, Field } from './dialog';

/** The operations the menu uses (ShellService's). */
export type MenuService = Pick<ShellService, 'view' | 'check' | 'refused' | 'create' | 'edit' | 'clone' | 'simple' | 'background' | 'delete' | 'restore' | 'move'>;

/** The session this operator deleted last in this menu, while U may still bring it back. */
export interface UndoSlot {
  last: { id: string; name: string } | null;
}

/** What a key's handler may do; the blessed layer (menu.ts) provides it. */
export interface MenuContext {
  readonly operator: Operator;
  readonly service: MenuService;
  readonly dialogs: Dialogs;
  /** How many rows PageUp and PageDown move: the table's height now, less one. */
  pageRows(): number;
  /** Moves the selection by `delta` rows (within the rows shown) and redraws. */
  move(delta: number): void;
  /** Starts typing a filter (`/`). */
  startFilter(): void;
  /** The table's own controls; absent where no table is drawn (their keys then do nothing). */
  readonly rows?: RowControls;
  /** Hands the terminal to an attach of `s` (read-only for a viewer), refused while an op runs. */
  attach(s: ClusterSession): void;
  /** Shows a message on the status line (red if `error`). */
  say(text: string, error?: boolean): void;
  /**
   * Runs an op in the background with `label` and a spinner; what `fn` resolves with goes to the
   * status line, a refusal as `CODE: message`. Refused while another op runs.
   */
  run(label: string, fn: () => Promise<string>): void;
  /** Ends the menu (Q). */
  quit(): void;
  /** What U undoes; absent: the menu offers no undo. */
  readonly undo?: UndoSlot;
}

/** What the keys that order and pick the table's rows do; each redraws. */
export interface RowControls {
  /** Selects the next row (wrapping) whose session needs the operator, or says none does. */
  nextNeedingYou(): void;
  /**
   * Acknowledges `s`'s done or waiting for this menu only, until its activity changes: it then
   * sorts and counts as if it had none. Says why not for any other activity.
   */
  dismiss(s: ClusterSession): void;
  /** The next sort order: attention, name, agent, last used, then attention again. */
  cycleSort(): void;
  /** Shows every agent's sessions, then each agent's in turn, then every agent's again. */
  cycleAgent(): void;
  /** Shows or hides the preview of the selected session. */
  togglePreview(): void;
  /** The preview's next height (a third, half, two thirds of the screen), showing it if hidden. */
  resizePreview(): void;
}

/** How the menu names a session: its name, or its id's start for a broken one. */
export function nameOf(s: ClusterSession): string {
  return s.entry.kind === 'session' ? s.entry.meta.name : s.id.slice(0, 8);
}

/**
 * Says why the menu refuses a key itself (not the role: ShellService.check records that), and
 * records it in the audit as the op's own refusal would be, when the key is an op's.
 */
export function refuse(ctx: MenuContext, action: Action | undefined, s: ClusterSession | undefined, code: ErrorCode, message: string): void {
  if (action) ctx.service.refused(ctx.operator, action, s?.id, new BerthError(code, message));
  ctx.say(message, true);
}

const PROTOCOL_CHOICES = ['tcp', 'udp'];

function checkPort(v: string): string | null {
  if (v === '') return null;
  return /^-?\d+$/.test(v) ? problemWith(portRequestSchema, Number(v)) : 'must be 0, -1 or a port number';
}

/** Limits as the form shows them: empty for the agent's default. */
function limitTexts(l: Limits | undefined): Record<keyof Limits, string> {
  return { memoryMb: l?.memoryMb?.toString() ?? '', cpus: l?.cpus?.toString() ?? '', pids: l?.pids?.toString() ?? '' };
}

/**
 * The fields of the new-session and edit forms. `limits` are checked as typed against the
 * agent's maximums when it told them (`max`); empty means the agent's default.
 */
export function sessionFields(name: string, protocol: string, port: string, dns: string, limits?: Limits, max?: Limits, command = ''): Field[] {
  const t = limitTexts(limits);
  return [
    { label: 'name', value: name, check: (v) => problemWith(sessionNameSchema, v) },
    { label: 'protocol', value: protocol, check: () => null, choices: PROTOCOL_CHOICES },
    { label: 'port', value: port, check: checkPort },
    { label: 'dns', value: dns, check: (v) => problemWith(dnsNameSchema, v) },
    { label: 'memory MB', value: t.memoryMb, check: (v) => limitProblem('memoryMb', v, max) },
    { label: 'cpus', value: t.cpus, check: (v) => limitProblem('cpus', v, max) },
    { label: 'pids', value: t.pids, check: (v) => limitProblem('pids', v, max) },
    { label: 'command', value: command, check: (v) => (v === '' ? null : problemWith(commandSchema, v)) },
  ];
}

/** The new-session form's project fields: a repository (empty: none) and the session's branch. */
function projectFields(): Field[] {
  return [
    { label: 'repo', value: '', check: (v) => (v === '' ? null : problemWith(repoUrlSchema, v)) },
    { label: 'branch', value: '', check: (v) => (v === '' ? null : problemWith(branchSchema, v)) },
  ];
}

interface SessionRequest {
  name: string;
  protocol: Protocol;
  port: number;
  dns: string;
  limits?: Limits;
  /** '' for the agent's default. */
  command: string;
}

/** The form's values as a create or edit request. */
function sessionRequest([name = '', protocol, port = '', dns = '', memoryMb = '', cpus = '', pids = '', command = '']: string[]): SessionRequest {
  const limits = limitsFromText({ memoryMb, cpus, pids });
  return { name, protocol: protocol as Protocol, port: port === '' ? 0 : Number(port), dns, ...(limits ? { limits } : {}), command };
}

/** The maximums an agent announced, if it did. */
function maxOf(ctx: MenuContext, agent: string | undefined): Limits | undefined {
  return agent ? ctx.service.view.agent(agent)?.hello?.capacity.limits?.max : undefined;
}

/** N: asks which agent when several are online, then for the new session's settings. */
export function newSession(ctx: MenuContext): void {
  const agents = ctx.service.view.agentList().filter((a) => a.status === 'online');
  if (agents.length === 0) return refuse(ctx, 'create', undefined, 'AGENT_OFFLINE', 'no agent is online');
  if (agents.length === 1) return newSessionForm(ctx, agents[0]?.id);
  const items = agents.map((a) => `${a.id}  (${a.sessions.size} sessions)`);
  ctx.dialogs.picker('new session on which agent?', items, (i) => newSessionForm(ctx, agents[i]?.id));
}

function newSessionForm(ctx: MenuContext, agent: string | undefined): void {
  const fields = [...sessionFields('', 'tcp', '', '', undefined, maxOf(ctx, agent)), ...projectFields()];
  ctx.dialogs.form(agent ? `new session on ${agent}` : 'new session', fields, async (values) => {
    const { command, ...r } = sessionRequest(values);
    const [repo = '', branch = ''] = values.slice(fields.length - 2);
    if (branch && !repo) throw new BerthError('BAD_REQUEST', 'branch: needs repo');
    const name = r.name;
    const e = await ctx.service.create(ctx.operator, {
      ...r,
      agent,
      ...(command ? { command } : {}),
      ...(repo ? { repo, ...(branch ? { branch } : {}) } : {}),
    });
    ctx.say(`created ${name} on ${e.agent}`);
  });
}

/** E: the session's settings in a form; a running session needs a restart to apply them. */
export function editSession(ctx: MenuContext, s: ClusterSession): void {
  if (s.entry.kind !== 'session') return; // a broken session has no settings to edit
  const m = s.entry.meta;
  const fields = sessionFields(m.name, m.protocol, String(m.port), m.dns, m.limits, maxOf(ctx, s.agent), m.command ?? '');
  ctx.dialogs.form(`edit ${nameOf(s)}`, fields, async (values) => {
    const { command, ...r } = sessionRequest(values);
    const e = await ctx.service.edit(ctx.operator, s.id, { ...r, ...(command !== (m.command ?? '') ? { command: command || null } : {}) });
    ctx.say(e.kind === 'session' && e.restartNeeded ? `edited ${r.name}: restart it to apply` : `edited ${r.name}`);
  });
}

/** M: asks which agent (online, not drained, not its own), then moves it there in the background. */
export function moveSession(ctx: MenuContext, s: ClusterSession): void {
  const name = nameOf(s);
  const agents = ctx.service.view.agentList().filter((a) => a.id !== s.agent && refusesSessions(a) === null);
  if (agents.length === 0) return refuse(ctx, 'move', s, 'CONFLICT', `no other agent takes sessions now to move ${name} to`);
  const items = agents.map((a) => `${a.id}  (${a.sessions.size} sessions)`);
  ctx.dialogs.picker(`move ${name} to which agent?`, items, (i) => {
    const to = agents[i]?.id;
    if (!to) return;
    ctx.run(`moving ${name} to ${to}`, async () => {
      await ctx.service.move(ctx.operator, s.id, to);
      return `moved ${name} to ${to}`;
    });
  });
}

/** C: asks the copy's name (the session's, with -copy). */
export function cloneSession(ctx: MenuContext, s: ClusterSession): void {
  const name = nameOf(s);
  const field: Field = { label: 'name', value: cloneName(name), check: (v) => problemWith(sessionNameSchema, v) };
  ctx.dialogs.form(`clone ${name}`, [field], async ([copyName]) => {
    await ctx.service.clone(ctx.operator, s.id, copyName);
    ctx.say(`cloned ${name} into ${copyName}`);
  });
}

/** O: asks why, then removes the session's lock, whoever holds it. */
export function overrideLock(ctx: MenuContext, s: ClusterSession): void {
  const name = nameOf(s);
  const field: Field = { label: 'reason', value: '', check: (v) => (v.trim() ? null : 'say why') };
  ctx.dialogs.form(`override the lock of ${name}`, [field], async ([reason]) => {
    await ctx.service.simple(ctx.operator, 'override', s.id, reason);
    ctx.say(`unlocked ${name}`);
  });
}

/** D: asks Y/N, then deletes the session (to its agent's trash, from where U brings it back). */
export function deleteSession(ctx: MenuContext, s: ClusterSession): void {
  const name = nameOf(s);
  ctx.dialogs.confirm(`Delete ${name} and all its files?`, () =>
    ctx.run(`deleting ${name}`, async () => {
      await ctx.service.delete(ctx.operator, s.id);
      const trashed = ctx.service.view.trash().some((t) => t.id === s.id);
      if (!ctx.undo || !trashed) return `deleted ${name}`;
      ctx.undo.last = { id: s.id, name };
      return `deleted ${name} — u to undo`;
    }),
  );
}

/** U: restores the session this operator deleted last in this menu (stopped), while it is in the trash. */
export function undoDelete(ctx: MenuContext): void {
  const last = ctx.undo?.last;
  if (!last) return ctx.say('nothing to undo: no session was deleted in this menu', true);
  ctx.run(`restoring ${last.name}`, async () => {
    await ctx.service.restore(ctx.operator, last.id);
    if (ctx.undo?.last?.id === last.id) ctx.undo.last = null;
    return `restored ${last.name} (stopped: R starts it)`;
  });
}

/** R: starts the session's container. */
export function restartSession(ctx: MenuContext, s: ClusterSession): void {
  runSimple(ctx, s, 'restart', 'restarting', 'restarted');
}

/** K: stops the session's container; asks Y/N first, naming them, when other operators are attached. */
export function killSession(ctx: MenuContext, s: ClusterSession): void {
  const kill = (): void => runSimple(ctx, s, 'kill', 'killing', 'killed');
  const others = othersAttached(s, ctx.operator.name);
  if (others.length === 0) return kill();
  ctx.dialogs.confirm(`Kill ${nameOf(s)}? ${attachedSentence(others)}`, kill);
}

function runSimple(ctx: MenuContext, s: ClusterSession, action: 'restart' | 'kill', doing: string, done: string): void {
  const name = nameOf(s);
  ctx.run(`${doing} ${name}`, async () => {
    await ctx.service.simple(ctx.operator, action, s.id);
    return `${done} ${name}`;
  });
}

/** B: ends the operator's own attaches to the session elsewhere (the session keeps running). */
export function background(ctx: MenuContext, s: ClusterSession): void {
  const name = nameOf(s);
  ctx.run(`detaching ${name}`, async () => `detached ${await ctx.service.background(ctx.operator, s.id)} of your attaches to ${name}`);
}
