/** Builds a real shell from its config: the only place that makes the real links, DNS and servers. */
import { createLogger, Logger } from '../common/logging';
import { ensureKeyFile } from '../common/ssh-keys';
import { readAgents } from './agents-file';
import { AuditLog } from './audit';
import { AgentPool } from './cluster/pool';
import { ClusterView } from './cluster/view';
import { ShellConfig, shellPaths } from './config';
import { DnsSink, ShellService } from './service';
import { loadOperators } from './ssh/operator-keys';
import { createShellServer } from './ssh/server';

export interface RunningShell {
  host: string;
  port: number;
  service: ShellService;
  /** Stops serving, drops the agent links and the DNS server. Idempotent. */
  stop(): Promise<void>;
}

export interface ShellOptions {
  config: ShellConfig;
  logger?: Logger;
  /** The DNS side (shell/dns); none: names are checked but not served. */
  dns?: (DnsSink & { stop(): Promise<void> }) | null;
  keepaliveMs?: number;
}

export async function startShell(o: ShellOptions): Promise<RunningShell> {
  const cfg = o.config;
  const logger = o.logger ?? createLogger({ level: cfg.log.level, file: cfg.log.file });
  // blessed exits the process on an uncaught exception when it holds the only handler: one
  // operator's menu must never take the shell down for everyone.
  process.on('uncaughtException', (err) => logger.error('uncaught exception', { err: err.message, stack: err.stack }));
  const paths = shellPaths(cfg.stateDir);
  const operators = loadOperators(cfg.operators);
  const hostKey = await ensureKeyFile(paths.hostKey, 'berth-shell-host');
  const agentKey = await ensureKeyFile(paths.agentKey, 'berth-shell');
  const view = new ClusterView();
  const pool = new AgentPool({ view, privateKey: agentKey.private, rpcTimeoutMs: cfg.rpcTimeoutMs, logger, keepaliveMs: o.keepaliveMs });
  const service = new ShellService({ view, agents: pool, audit: new AuditLog(cfg.auditFile, logger), dns: o.dns ?? null, logger });
  pool.start(await readAgents(paths.agents));
  const server = createShellServer({ hostKey: hostKey.private, operators, service, logger });
  const addr = await server.listen(cfg.listen.port, cfg.listen.host);
  logger.info('shell listening', { host: addr.address, port: addr.port, agents: view.agentList().length });
  let stopped = false;
  return {
    host: addr.address,
    port: addr.port,
    service,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      pool.stop();
      await o.dns?.stop();
    },
  };
}
