/** Builds a real shell from its config: the only place that makes the real links, DNS and servers. */
import { createLogger, Logger } from '../common/logging';
import { ensureKeyFile } from '../common/ssh-keys';
import { AuditLog } from './audit';
import { AgentPool, readAgents } from './agents';
import { ClusterView } from './cluster/view';
import { ShellConfig, shellPaths } from './config';
import { Dns, startDns } from './dns';
import { ShellService } from './service';
import { ConfigChanges, HOST, LiveConfig } from './live-config';
import { loadOperators } from './ssh/operator-keys';
import { OperatorRoster } from './ssh/operator-roster';
import { createShellServer } from './ssh/server';

export interface RunningShell {
  host: string;
  port: number;
  service: ShellService;
  /** Where the managed dnsmasq answers, or null (unmanaged, or no DNS). */
  dns: { host: string; port: number } | null;
  /**
   * Reads shell.json and agents.json again and applies the operators and agents (what SIGHUP
   * does). Throws BAD_REQUEST, keeping the running config, when either file is invalid.
   */
  reload(): Promise<ConfigChanges>;
  /** Stops serving, drops the agent links and the DNS server. Idempotent. */
  stop(): Promise<void>;
}

export interface ShellOptions {
  config: ShellConfig;
  /** The file `config` came from: operators and agents then change live (see live-config.ts). */
  configFile?: string;
  logger?: Logger;
  keepaliveMs?: number;
}

export async function startShell(o: ShellOptions): Promise<RunningShell> {
  const cfg = o.config;
  const logger = o.logger ?? createLogger({ level: cfg.log.level, file: cfg.log.file });
  // blessed exits the process on an uncaught exception when it holds the only handler: one
  // operator's menu must never take the shell down for everyone.
  process.on('uncaughtException', (err) => logger.error('uncaught exception', { err: err.message, stack: err.stack }));
  const paths = shellPaths(cfg.stateDir);
  const operators = new OperatorRoster(loadOperators(cfg.operators));
  const hostKey = await ensureKeyFile(paths.hostKey, 'berth-shell-host');
  const agentKey = await ensureKeyFile(paths.agentKey, 'berth-shell');
  const agents = await readAgents(paths.agents);
  // With neither a managed dnsmasq nor one to signal, names are checked but not served.
  const dns: Dns | null =
    cfg.dns.manage || cfg.dns.pidFile
      ? await startDns({ domain: cfg.dns.domain, hostsFile: cfg.hostsFile, manage: cfg.dns.manage, pidFile: cfg.dns.pidFile, logger })
      : null;
  const view = new ClusterView();
  const pool = new AgentPool({ view, privateKey: agentKey.private, rpcTimeoutMs: cfg.rpcTimeoutMs, logger, keepaliveMs: o.keepaliveMs });
  const audit = new AuditLog(cfg.auditFile, logger, cfg.audit);
  const live = new LiveConfig({ configFile: o.configFile ?? null, agentsFile: paths.agents, roster: operators, pool, audit, logger, shellKey: agentKey.public });
  await live.remember();
  const service = new ShellService({ view, agents: pool, audit, dns, logger, live });
  const server = createShellServer({ hostKey: hostKey.private, operators, service, logger, login: cfg.login });
  let addr: { address: string; port: number };
  try {
    addr = await server.listen(cfg.listen.port, cfg.listen.host);
  } catch (err) {
    await dns?.stop();
    throw err;
  }
  pool.onOnline(() => void service.resolveMoves());
  pool.start(agents);
  logger.info('shell listening', { host: addr.address, port: addr.port, agents: view.agentList().length });
  let stopped = false;
  return {
    host: addr.address,
    port: addr.port,
    service,
    dns: dns?.address ?? null,
    reload: () => live.reload(HOST),
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      pool.stop();
      await dns?.stop();
    },
  };
}
