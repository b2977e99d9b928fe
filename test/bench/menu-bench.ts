/**
 * Menu redraw benchmark (`npm run bench:menu`): the real menu (blessed) on in-memory streams,
 * a cluster view with 2,000 sessions across 10 agents, one session changing before each redraw
 * (what an agent event does). Reports the redraw time against the target, and the time of the
 * share of it that rebuilds the view's sorted session list after the change (shared by every menu).
 */
import { PassThrough, Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../common/logging';
import { SessionEntry } from '../../common/protocol';
import { AuditLog } from '../../shell/audit';
import { ClusterView } from '../../shell/cluster/view';
import { ShellService } from '../../shell/service';
import { startMenu } from '../../shell/ui/menu';
import { blockMedians, log, printReport, quantile, runBench } from './lib';

const AGENTS = 10;
const SESSIONS = 2000;
const RUNS = 200;
const TARGET_MS = 50;
const BLOCKS = 10;

function entry(agent: string, i: number): SessionEntry {
  return {
    kind: 'session',
    agent,
    meta: {
      version: 1,
      id: randomUUID(),
      name: `session-${i}`,
      protocol: 'tcp',
      port: 1001 + i,
      dns: `s${i}`,
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      lastAccessedAt: null,
      createdBy: 'alice',
    },
    state: i % 3 === 0 ? 'R' : '-',
    attached: i % 7 === 0 ? ['alice', 'bob'] : [],
    lock: null,
    container: null,
    restartNeeded: false,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const view = new ClusterView();
  const entries: SessionEntry[] = [];
  for (let a = 0; a < AGENTS; a++) {
    const id = `agent-${a + 1}`;
    view.addAgent(id);
    view.setStatus(id, a === AGENTS - 1 ? 'offline' : 'online', '');
  }
  for (let i = 0; i < SESSIONS; i++) {
    const e = entry(`agent-${(i % AGENTS) + 1}`, i);
    entries.push(e);
    view.apply(e.agent, { type: 'session', session: e });
  }
  const service = new ShellService({ view, agents: null as never, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
  let bytes = 0;
  const output = new Writable({
    write(chunk: Buffer, _e, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  const menu = startMenu({ input: new PassThrough(), output, cols: 160, rows: 50, service, operator: { name: 'alice', role: 'admin' }, logger: silentLogger, attach: async () => undefined });

  const redraw: number[] = [];
  const rowsOnly: number[] = [];
  for (let r = 0; r < RUNS + 10; r++) {
    const e = entries[(r * 37) % SESSIONS];
    if (!e || e.kind !== 'session') continue;
    view.apply(e.agent, { type: 'session', session: { ...e, state: r % 2 ? 'R' : '-' } });
    const t0 = performance.now();
    view.sessions();
    const t1 = performance.now();
    menu.render();
    const t2 = performance.now();
    if (r >= 10) {
      redraw.push(t2 - t0);
      rowsOnly.push(t1 - t0);
    }
  }
  menu.destroy();
  const med = quantile(redraw, 0.5);
  const p90 = quantile(redraw, 0.9);
  const base = quantile(rowsOnly, 0.5);
  const lines = [
    '',
    '| metric | value | target |',
    '|---|---|---|',
    `| menu redraw, ${SESSIONS} sessions on ${AGENTS} agents, 160×50 terminal (n=${RUNS}) | median ${med.toFixed(2)} ms, p90 ${p90.toFixed(2)} ms | < ${TARGET_MS} ms ${p90 < TARGET_MS ? '✓' : '✗'} |`,
    `| … of which the view's sorted list, rebuilt after the change (once for all menus) | median ${base.toFixed(2)} ms | — |`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  log(`${bytes} bytes drawn`);
  printReport({
    bench: 'menu',
    setup: `${SESSIONS} sessions on ${AGENTS} agents, 160×50, ${RUNS} redraws in ${BLOCKS} blocks`,
    figures: [
      { key: 'menu.redraw', label: `menu redraw, ${SESSIONS} sessions on ${AGENTS} agents (one changed before each)`, unit: 'ms', values: blockMedians(redraw, BLOCKS), target: { of: 'value', op: '<=', value: TARGET_MS } },
      { key: 'menu.list', label: "… of which the view's sorted list, rebuilt after the change (once for all menus)", unit: 'ms', values: blockMedians(rowsOnly, BLOCKS) },
    ],
    seconds: (performance.now() - started) / 1000,
  });
}

runBench(main, log);
