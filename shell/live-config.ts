/**
 * The shell's config while it runs: the operators (shell.json) and the agents (agents.json in the
 * state folder) change without a restart, through a reload (SIGHUP: both files read again) or an
 * admin's `operator` / `agent` command (the file written, then applied). Either way both files are
 * checked whole first: an invalid one is refused whole, the running config is kept, and the
 * refusal says which file and field. Applied changes reach everyone at once (operator-roster.ts,
 * AgentPool.sync): connections stay, a removed operator is disconnected, a role change applies
 * from the next action. Every change and every refusal goes into the audit log. One change at a
 * time: edits and reloads are serialized.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError, messageOf, toBerthError } from '../common/errors';
import { parseJson } from '../common/json';
import { Logger } from '../common/logging';
import { Mutex } from '../common/mutex';
import { AgentEntry, AgentPool, readAgents, writeAgentsFile } from './agents';
import type { AgentChanges } from './agents/pool';
import { AuditLog } from './audit';
import { OperatorConfig, shellConfigSchema } from './config';
import { loadOperators } from './ssh/operator-keys';
import { OperatorChanges, OperatorRoster } from './ssh/operator-roster';

/** Who changed the config: an operator's name, or HOST for a reload signalled on the shell's host. */
export const HOST = '(host)';

/** The settings a reload cannot change: a new value is reported, and waits for a restart. */
const NEEDS_RESTART = ['listen', 'stateDir', 'dns', 'auditFile', 'audit', 'rpcTimeoutMs', 'login', 'log'] as const;

export interface ConfigChanges {
  operators: OperatorChanges;
  agents: AgentChanges;
  /** Settings of shell.json that changed but apply only after a restart. */
  needRestart: string[];
}

export interface LiveConfigOptions {
  /** shell.json; null: the shell was started from an object, and nothing can be written back. */
  configFile: string | null;
  /** agents.json. */
  agentsFile: string;
  roster: OperatorRoster;
  pool: AgentPool;
  /** The public key this shell shows agents (for `agent add` to print the line that trusts it). */
  shellKey: string;
  audit: AuditLog;
  logger: Logger;
}

export class LiveConfig {
  private readonly mutex = new Mutex();
  /** shell.json as the shell started with it (to tell which settings wait for a restart). */
  private started: Record<string, unknown> | null = null;

  constructor(private readonly o: LiveConfigOptions) {}

  /** The operators now, as shell.json lists them (keys as written). */
  async operators(): Promise<OperatorConfig[]> {
    return (await this.readConfig()).operators;
  }

  /** The agents now. */
  agents(): AgentEntry[] {
    return this.o.pool.entries();
  }

  /** How many connections operator `name` has open. */
  connections(name: string): number {
    return this.o.roster.connections(name);
  }

  get shellKey(): string {
    return this.o.shellKey;
  }

  /**
   * Reads shell.json and agents.json again and applies them (SIGHUP). Refused whole (BAD_REQUEST
   * naming the file) when either is invalid; the running config is kept. Audited as config.reload.
   */
  reload(by = HOST): Promise<ConfigChanges> {
    return this.changing(by, 'config.reload', async () => {
      const config = this.o.configFile ? await this.readConfig() : null;
      const agents = await readAgents(this.o.agentsFile);
      return this.applyConfig(config?.operators ?? null, agents, config?.raw);
    });
  }

  /**
   * Changes the operators in shell.json (`edit` gets the list as written and returns the new one),
   * checks the whole file, writes it atomically and applies it. `op` names the change in the
   * audit (operator.add, operator.role, …). Throws BAD_REQUEST for a list that does not check.
   */
  editOperators(by: string, op: string, edit: (list: OperatorConfig[]) => OperatorConfig[]): Promise<ConfigChanges> {
    return this.changing(by, op, async () => {
      const file = this.o.configFile;
      if (!file) throw new BerthError('CONFLICT', 'this shell runs without a config file to write: change its operators in its config and reload');
      const { raw } = await this.readConfig();
      const next = { ...raw, operators: edit(structuredClone(raw.operators as OperatorConfig[])) };
      const checked = shellConfigSchema.safeParse(next);
      if (!checked.success) throw new BerthError('BAD_REQUEST', `the change would make ${file} invalid: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const operators = loadOperators(checked.data.operators);
      await rewriteInPlace(file, `${JSON.stringify(next, null, 2)}\n`, path.join(path.dirname(this.o.agentsFile), 'shell.json.previous'));
      return this.applyConfig(checked.data.operators, null, next, operators);
    });
  }

  /** Changes agents.json the same way (`op`: agent.add, agent.remove, …). */
  editAgents(by: string, op: string, edit: (list: AgentEntry[]) => AgentEntry[]): Promise<ConfigChanges> {
    return this.changing(by, op, async () => {
      const next = edit(await readAgents(this.o.agentsFile));
      await writeAgentsFile(this.o.agentsFile, next);
      return this.applyConfig(null, next);
    });
  }

  /** Runs one change at a time and audits it: its summary when it applied, its error when refused. */
  private changing(by: string, op: string, fn: () => Promise<ConfigChanges>): Promise<ConfigChanges> {
    return this.mutex.run(async () => {
      try {
        const changes = await fn();
        const message = describeChanges(changes);
        this.o.logger.info('config changed', { by, op, changes: message });
        await this.o.audit.record({ operator: by, op, result: 'ok', message });
        return changes;
      } catch (err) {
        const e = toBerthError(err);
        this.o.logger.warn('config change refused', { by, op, err: e.message });
        await this.o.audit.record({ operator: by, op, result: 'refused', code: e.code, message: e.message });
        throw e;
      }
    });
  }

  /**
   * Applies checked operators (null: unchanged) and agents (null: unchanged); `raw` is shell.json
   * as read, to tell the settings that wait for a restart. Parsing the keys comes first, so a bad
   * key changes nothing.
   */
  private applyConfig(operators: OperatorConfig[] | null, agents: AgentEntry[] | null, raw?: Record<string, unknown>, parsed = operators ? loadOperators(operators) : null): ConfigChanges {
    const none = { added: [], removed: [], roles: [], updated: [] };
    return {
      operators: parsed ? this.o.roster.replace(parsed) : none,
      agents: agents ? this.o.pool.sync(agents) : { added: [], removed: [], changed: [], drained: [], resumed: [] },
      needRestart: raw && this.started ? NEEDS_RESTART.filter((k) => JSON.stringify(this.started?.[k]) !== JSON.stringify(raw[k])) : [],
    };
  }

  /** shell.json as written and its operators, checked. Throws BAD_REQUEST naming the file and field. */
  private async readConfig(): Promise<{ raw: Record<string, unknown>; operators: OperatorConfig[] }> {
    const file = this.o.configFile;
    if (!file) throw new BerthError('CONFLICT', 'this shell runs without a config file');
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new BerthError('BAD_REQUEST', `config ${file}: cannot read: ${messageOf(err)}`, { cause: err });
    }
    const checked = parseJson(text, shellConfigSchema);
    if (!checked.ok) throw new BerthError('BAD_REQUEST', `config ${file}: ${checked.problem}`);
    return { raw: JSON.parse(text) as Record<string, unknown>, operators: checked.value.operators };
  }

  /** Remembers shell.json as the shell started with it, so a reload can tell what waits for a restart. */
  async remember(): Promise<void> {
    if (this.o.configFile) this.started = (await this.readConfig()).raw;
  }
}

/**
 * Writes shell.json in place (truncate, write, fsync): the shell may write the file but not
 * rename files in its folder (/etc/berth). The version before goes to `previous` first, so a
 * write cut short by a crash can be put back by hand.
 */
async function rewriteInPlace(file: string, text: string, previous: string): Promise<void> {
  await fs.copyFile(file, previous);
  const fh = await fs.open(file, 'r+');
  try {
    await fh.truncate(0);
    await fh.write(text, 0, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** One line on what changed ("operators +carol -bob bob: operator→viewer; agents +agent-3"). */
export function describeChanges(c: ConfigChanges): string {
  const parts: string[] = [];
  const ops = [
    ...c.operators.added.map((n) => `+${n}`),
    ...c.operators.removed.map((n) => `-${n}`),
    ...c.operators.roles.map((r) => `${r.name}: ${r.from}→${r.to}`),
    ...c.operators.updated.map((n) => `${n}: keys or bell`),
  ];
  if (ops.length) parts.push(`operators ${ops.join(' ')}`);
  const agents = [
    ...c.agents.added.map((n) => `+${n}`),
    ...c.agents.removed.map((n) => `-${n}`),
    ...c.agents.changed.map((n) => `~${n}`),
    ...c.agents.drained.map((n) => `${n} drained`),
    ...c.agents.resumed.map((n) => `${n} resumed`),
  ];
  if (agents.length) parts.push(`agents ${agents.join(' ')}`);
  if (c.needRestart.length) parts.push(`needs a restart: ${c.needRestart.join(', ')}`);
  return parts.join('; ') || 'no change';
}
