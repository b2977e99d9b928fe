/**
 * The admin's commands that change the fleet while the shell runs: `agent list|add|remove` and
 * `operator list|add|remove|role|keys`. Each writes the file it concerns (agents.json, shell.json),
 * checked whole, and applies it at once (live-config.ts): nobody else is disconnected but a
 * removed operator, and the change is audited. Refused for anyone but an admin.
 */
import { BerthError } from '../../common/errors';
import { inertCell, inertJson } from '../../common/terminal-text';
import { AgentEntry, probeFingerprint } from '../agents';
import { fingerprintSchema, parseJump } from '../agents/enrolled';
import { OperatorConfig, ROLES, Role } from '../config';
import { ConfigChanges, describeChanges } from '../live-config';
import type { Operator, ShellService } from '../service';
import { FlagSpec, UsageError, listFlag, parseFlags, strFlag } from './args';
import type { CliIo } from './io';
import { table } from './format';

export const FLEET_USAGE = `  agent list                               the enrolled agents, their pinned keys and state
  agent add ID --host H --port P [--fingerprint SHA256:…] [--address IP]
            [--jump USER@HOST:PORT --jump-fingerprint SHA256:…]
                                           enrol an agent and connect to it now (no fingerprint:
                                           the key it presents now is pinned, and printed; through
                                           a bastion, both fingerprints are needed)
  agent drain ID | agent resume ID         no new sessions on it (create, clone; its own keep
                                           running), and back
  agent remove ID --yes                    drop an agent: its sessions leave the view (they keep
                                           running on its host); attaches to them end
  operator list                            operators, roles, keys, open connections
  operator add NAME --role R --key KEY [--key KEY…]
  operator remove NAME --yes               disconnects them at once
  operator role NAME ROLE                  applies at once, also to their open connections
  operator keys NAME --key KEY [--key KEY…]
                                           replaces their keys (from their next login)
`;

const JSON_FLAG: FlagSpec = { json: 'boolean' };

/** Runs `agent …` or `operator …`; what it prints goes to `io`. */
export async function runFleetCommand(cmd: 'agent' | 'operator', words: string[], op: Operator, svc: ShellService, io: CliIo): Promise<void> {
  const [sub = '', ...rest] = words;
  if (cmd === 'agent') return agentCommand(sub, rest, op, svc, io);
  return operatorCommand(sub, rest, op, svc, io);
}

async function agentCommand(sub: string, rest: string[], op: Operator, svc: ShellService, io: CliIo): Promise<void> {
  const live = svc.liveConfig(op, 'manage-agents');
  switch (sub) {
    case 'list': {
      const { flags } = parseFlags(rest, JSON_FLAG, 0);
      const agents = live.agents().map((a) => ({ ...a, status: svc.view.agent(a.id)?.status ?? 'offline' }));
      if (flags.json) io.out(`${inertJson(agents)}\n`);
      else io.out(table(['AGENT', 'HOST', 'PORT', 'ADDRESS', 'STATUS', 'FINGERPRINT'], agents.map((a) => [a.id, a.host, String(a.port), a.address ?? '-', a.status, a.fingerprint].map((c) => inertCell(c)))));
      return;
    }
    case 'add': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, host: 'string', port: 'string', fingerprint: 'string', address: 'string', jump: 'string', 'jump-fingerprint': 'string' }, 1);
      const id = need(positionals[0], 'agent add ID');
      const host = strFlag(flags.host);
      const portText = strFlag(flags.port);
      if (host === undefined || portText === undefined) throw new UsageError('agent add needs --host H --port P');
      if (!/^\d{1,5}$/.test(portText)) throw new UsageError('--port must be a port number');
      const jump = jumpFlags(strFlag(flags.jump), strFlag(flags['jump-fingerprint']));
      let fingerprint = strFlag(flags.fingerprint);
      if (fingerprint === undefined && jump) throw new UsageError('an agent behind a bastion needs --fingerprint (berth agent fingerprint on its host)');
      if (fingerprint === undefined) {
        fingerprint = await probeFingerprint(host, Number(portText));
        io.err(`pinned the host key ${inertCell(host)}:${portText} presents now: ${fingerprint}; check it against \`berth agent fingerprint\` on the agent host\n`);
      }
      const address = strFlag(flags.address);
      const entry: AgentEntry = { id, host, port: Number(portText), fingerprint, ...(address ? { address } : {}), ...jump };
      const changes = await live.editAgents(op.name, 'agent.add', (list) => [...list.filter((a) => a.id !== id), entry]);
      say(io, flags.json === true, changes, `enrolled ${inertCell(id)}; on the agent host, trust this shell with: berth agent authorize-shell --config AGENT.json "${live.shellKey}"`);
      return;
    }
    case 'drain':
    case 'resume': {
      const { flags, positionals } = parseFlags(rest, JSON_FLAG, 1);
      const id = need(positionals[0], `agent ${sub} ID`);
      const drained = sub === 'drain';
      const changes = await live.editAgents(op.name, `agent.${sub}`, (list) => {
        if (!list.some((a) => a.id === id)) throw new BerthError('NOT_FOUND', `agent ${id} is not enrolled`);
        return list.map((a) => {
          if (a.id !== id) return a;
          const rest = { ...a };
          delete rest.drained;
          return drained ? { ...rest, drained } : rest;
        });
      });
      say(io, flags.json === true, changes, drained ? `${inertCell(id)} takes no new sessions; its sessions keep running` : `${inertCell(id)} takes new sessions again`);
      return;
    }
    case 'remove': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, yes: 'boolean' }, 1);
      const id = need(positionals[0], 'agent remove ID');
      if (flags.yes !== true) throw new UsageError('agent remove drops the agent and its sessions from view: add --yes');
      const changes = await live.editAgents(op.name, 'agent.remove', (list) => {
        if (!list.some((a) => a.id === id)) throw new BerthError('NOT_FOUND', `agent ${id} is not enrolled`);
        return list.filter((a) => a.id !== id);
      });
      say(io, flags.json === true, changes, `removed ${inertCell(id)}`);
      return;
    }
    default:
      throw new UsageError(`agent: unknown subcommand ${JSON.stringify(sub)} (list, add, drain, resume, remove)`);
  }
}

async function operatorCommand(sub: string, rest: string[], op: Operator, svc: ShellService, io: CliIo): Promise<void> {
  const live = svc.liveConfig(op, 'manage-operators');
  switch (sub) {
    case 'list': {
      const { flags } = parseFlags(rest, JSON_FLAG, 0);
      const list = (await live.operators()).map((o) => ({ name: o.name, role: o.role, keys: o.keys.length, bell: o.bell, connections: live.connections(o.name) }));
      if (flags.json) io.out(`${inertJson(list)}\n`);
      else io.out(table(['OPERATOR', 'ROLE', 'KEYS', 'CONNECTIONS'], list.map((o) => [inertCell(o.name), o.role, String(o.keys), String(o.connections)])));
      return;
    }
    case 'add': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, role: 'string', key: 'list' }, 1);
      const name = need(positionals[0], 'operator add NAME');
      const role = roleOf(strFlag(flags.role));
      const keys = listFlag(flags.key);
      if (keys.length === 0) throw new UsageError('operator add needs --key KEY (an OpenSSH public key line, quoted)');
      const changes = await live.editOperators(op.name, 'operator.add', (list) => {
        if (list.some((o) => o.name === name)) throw new BerthError('CONFLICT', `operator ${name} exists: change it with operator role or operator keys`);
        return [...list, { name, role, keys, bell: true }];
      });
      say(io, flags.json === true, changes, `added ${inertCell(name)} (${role})`);
      return;
    }
    case 'remove': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, yes: 'boolean' }, 1);
      const name = need(positionals[0], 'operator remove NAME');
      if (flags.yes !== true) throw new UsageError('operator remove disconnects them at once: add --yes');
      const changes = await live.editOperators(op.name, 'operator.remove', (list) => keepAnAdmin(named(list, name, (o) => [o]).filter((o) => o.name !== name)));
      say(io, flags.json === true, changes, `removed ${inertCell(name)}`);
      return;
    }
    case 'role': {
      const { flags, positionals } = parseFlags(rest, JSON_FLAG, 2);
      const name = need(positionals[0], 'operator role NAME ROLE');
      const role = roleOf(positionals[1]);
      const changes = await live.editOperators(op.name, 'operator.role', (list) => keepAnAdmin(named(list, name, (o) => [{ ...o, role }])));
      say(io, flags.json === true, changes, `${inertCell(name)} is now ${role}`);
      return;
    }
    case 'keys': {
      const { flags, positionals } = parseFlags(rest, { ...JSON_FLAG, key: 'list' }, 1);
      const name = need(positionals[0], 'operator keys NAME --key KEY');
      const keys = listFlag(flags.key);
      if (keys.length === 0) throw new UsageError('operator keys needs --key KEY (again for more)');
      const changes = await live.editOperators(op.name, 'operator.keys', (list) => named(list, name, (o) => [{ ...o, keys }]));
      say(io, flags.json === true, changes, `replaced the keys of ${inertCell(name)}`);
      return;
    }
    default:
      throw new UsageError(`operator: unknown subcommand ${JSON.stringify(sub)} (list, add, remove, role, keys)`);
  }
}

function need(v: string | undefined, usage: string): string {
  if (v === undefined || v === '') throw new UsageError(`usage: ${usage}`);
  return v;
}

/** The bastion flags, checked: both or neither. */
function jumpFlags(jump: string | undefined, fingerprint: string | undefined): { jump: string; jumpFingerprint: string } | undefined {
  if (jump === undefined && fingerprint === undefined) return undefined;
  if (jump === undefined || fingerprint === undefined) throw new UsageError('--jump and --jump-fingerprint go together');
  const r = parseJump(jump);
  if (!r.ok) throw new UsageError(`--jump: ${r.problem}`);
  if (!fingerprintSchema.safeParse(fingerprint).success) throw new UsageError('--jump-fingerprint must be an OpenSSH SHA256 fingerprint');
  return { jump, jumpFingerprint: fingerprint };
}

function roleOf(v: string | undefined): Role {
  const role = ROLES.find((r) => r === v);
  if (!role) throw new UsageError(`the role must be ${ROLES.join(', ')}`);
  return role;
}

/** `list` with operator `name` replaced by what `change` makes of it. Throws NOT_FOUND if there is none. */
function named(list: OperatorConfig[], name: string, change: (o: OperatorConfig) => OperatorConfig[]): OperatorConfig[] {
  if (!list.some((o) => o.name === name)) throw new BerthError('NOT_FOUND', `no operator named ${name}`);
  return list.flatMap((o) => (o.name === name ? change(o) : [o]));
}

/** Refuses a list that leaves nobody able to change the fleet again. */
function keepAnAdmin(list: OperatorConfig[]): OperatorConfig[] {
  if (!list.some((o) => o.role === 'admin')) throw new BerthError('CONFLICT', 'that would leave no admin: make another operator admin first');
  return list;
}

function say(io: CliIo, json: boolean, changes: ConfigChanges, text: string): void {
  io.out(json ? `${inertJson(changes)}\n` : `${text} (${describeChanges(changes)})\n`);
}
