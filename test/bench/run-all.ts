/**
 * `npm run bench`: runs every benchmark, one after the other, each in its own process, and writes
 * test/bench/RESULTS.md: the machine (cores, memory, load before and after each benchmark), the
 * commit, and for each figure min / median / max over its repeated blocks, with its ratio to the
 * direct path where it has one (ours ÷ direct, block by block, measured interleaved in the same
 * run) and its target.
 *
 *   npm run bench [-- --quick] [-- --only agent,shell]
 *
 * `--only` runs the benchmarks named and replaces only their sections of RESULTS.md; the others'
 * stay as last written. `--quick` runs each benchmark's quick mode (about 2 minutes in all) and
 * prints the tables without writing RESULTS.md: it is for use while developing. Everything in
 * RESULTS.md outside the sections this writes (the history kept by hand below them) is kept.
 * Exit status: 1 when a benchmark broke (the others still run), else 0; a missed target is
 * reported in the table, not a failure.
 */
import { spawn, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../helpers/agent-process';
import { BenchReport, Figure, REPORT_PREFIX, log, met, ratios, summary } from './lib';

/** In the order they run: quick and in-process first, the long ones last. */
const BENCHES = ['menu', 'agent', 'shell', 'attention', 'move', 'scale'] as const;
type BenchName = (typeof BENCHES)[number];

const RESULTS = path.join(REPO_ROOT, 'test/bench/RESULTS.md');
const HISTORY_MARK = '<!-- history: kept by hand, below every section npm run bench writes -->';
const FIRST_LINES = [
  '# Benchmark results',
  '',
  'Written by `npm run bench` (every benchmark) and `npm run bench -- --only NAME,…` (those named;',
  'the other sections stay as last written). Each figure is measured over repeated blocks and given',
  'as min / median / max of the blocks. Where berth has a direct alternative (what an operator would',
  'run without it), that path is measured in the same blocks, interleaved, and the ratio is ours ÷',
  'direct block by block: for times lower is better, for MB/s higher is better. README.md quotes',
  'the medians.',
  '',
];

interface Run {
  name: BenchName;
  report: BenchReport | null;
  error: string | null;
  out: string;
  loadBefore: number[];
  loadAfter: number[];
  seconds: number;
}

function parseArgs(argv: string[]): { quick: boolean; only: BenchName[] } {
  const quick = argv.includes('--quick');
  const i = argv.indexOf('--only');
  if (i === -1) return { quick, only: [...BENCHES] };
  const names = (argv[i + 1] ?? '').split(',').filter(Boolean);
  const unknown = names.filter((n) => !(BENCHES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) throw new Error(`--only wants benchmark names from ${BENCHES.join(', ')}; got ${JSON.stringify(argv[i + 1] ?? '')}`);
  return { quick, only: BENCHES.filter((b) => names.includes(b)) };
}

/** Runs one benchmark; its progress goes to our stderr, its tables to our stdout. */
function runOne(name: BenchName, quick: boolean): Promise<Run> {
  const loadBefore = os.loadavg();
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(REPO_ROOT, `dist/test/bench/${name}-bench.js`), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    out += text;
    // Whole lines through, the report line kept back (it is read below).
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (!l.startsWith(REPORT_PREFIX)) process.stdout.write(`${l}\n`);
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(REPORT_PREFIX));
      let report: BenchReport | null = null;
      let error: string | null = code === 0 ? null : `exited ${code ?? signal}`;
      if (line) {
        try {
          report = JSON.parse(line.slice(REPORT_PREFIX.length)) as BenchReport;
        } catch (err) {
          error = `its report is not JSON (${String(err)})`;
        }
      } else if (!error) error = 'it printed no report';
      resolve({ name, report, error, out, loadBefore, loadAfter: os.loadavg(), seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/** Three significant figures, at most (1234 → 1234, 12.34 → 12.3, 1.234 → 1.23). */
export function num(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function targetText(f: Figure): string {
  const t = f.target;
  if (!t) return '—';
  const ok = met(f);
  const what = t.of === 'ratio' ? 'ratio' : '';
  return `${what} ${t.op === '<=' ? '≤' : '≥'} ${t.value}${t.of === 'value' ? ` ${f.unit}` : ''} ${ok ? '✓' : '✗'}`.trim();
}

function figureRow(f: Figure): string {
  const s = summary(f.values);
  const d = f.direct ? summary(f.direct.values) : null;
  const r = f.direct ? summary(ratios(f)) : null;
  const cells = [
    f.note ? `${f.label} (${f.note})` : f.label,
    f.unit,
    `**${num(s.median)}**`,
    `${num(s.min)} – ${num(s.max)}`,
    String(s.n),
    d && f.direct ? `${f.direct.label}: ${num(d.median)} (${num(d.min)} – ${num(d.max)})` : '—',
    r ? `**${num(r.median)}** (${num(r.min)} – ${num(r.max)})` : '—',
    targetText(f),
  ];
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

function machineLine(): string {
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  let docker = '?';
  try {
    docker = execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* said as '?' */
  }
  const commit = git(['rev-parse', '--short', 'HEAD']) || '?';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : '';
  const cpus = os.cpus();
  return (
    `commit ${commit}${dirty}, ${cpus.length} cores (${cpus[0]?.model.trim() ?? '?'}), ` +
    `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, Docker ${docker}`
  );
}

function section(run: Run, machine: string): string {
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join('/');
  const lines = [
    `<!-- bench:${run.name} -->`,
    `## ${run.name}`,
    '',
    `${when} UTC, ${machine}; load (1/5/15 min) ${load(run.loadBefore)} before, ${load(run.loadAfter)} after; ${Math.round(run.seconds)} s.`,
    '',
  ];
  const r = run.report;
  if (!r) {
    lines.push(`This run broke: ${run.error ?? 'no report'}. Its output ended:`, '', '```', ...run.out.split('\n').slice(-15), '```', '');
  } else {
    lines.push(`Setup: ${r.setup}.`, '');
    lines.push('| figure | unit | median | min – max | blocks | direct path: median (min – max) | ratio ours ÷ direct | target |');
    lines.push('|---|---|---|---|---|---|---|---|');
    lines.push(...r.figures.map(figureRow), '');
    for (const t of r.tables ?? []) {
      lines.push(`${t.title}:`, '', `| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((row) => `| ${row.join(' | ')} |`), '');
    }
    for (const n of r.notes ?? []) lines.push(`- ${n}`);
    if (r.notes?.length) lines.push('');
  }
  lines.push(`<!-- /bench:${run.name} -->`);
  return lines.join('\n');
}

/** RESULTS.md with the sections of `runs` replaced (or added, in BENCHES order) and all else kept. */
export function merge(old: string, sections: Map<string, string>): string {
  const kept = new Map<string, string>();
  for (const m of old.matchAll(/<!-- bench:([a-z]+) -->[\s\S]*?<!-- \/bench:\1 -->/g)) kept.set(m[1] ?? '', m[0]);
  const historyAt = old.indexOf(HISTORY_MARK);
  const history = historyAt === -1 ? `${HISTORY_MARK}\n\n## History\n` : old.slice(historyAt);
  const body = BENCHES.map((b) => sections.get(b) ?? kept.get(b)).filter((s): s is string => s !== undefined);
  return [...FIRST_LINES, body.join('\n\n'), '', history.trimEnd(), ''].join('\n');
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  const machine = machineLine();
  log(`${only.join(', ')}${quick ? ' (quick)' : ''} on ${machine}`);
  const t0 = performance.now();
  const runs: Run[] = [];
  for (const name of only) {
    log(`== ${name}`);
    const r = await runOne(name, quick);
    log(`== ${name}: ${r.error ? `BROKE (${r.error})` : 'done'} in ${Math.round(r.seconds)} s`);
    runs.push(r);
  }
  const sections = new Map(runs.map((r) => [r.name as string, section(r, machine)]));
  process.stdout.write(`\n${[...sections.values()].join('\n\n')}\n`);
  if (quick) log('quick run: RESULTS.md left as it was');
  else {
    const old = await fs.readFile(RESULTS, 'utf8').catch(() => '');
    await fs.writeFile(RESULTS, merge(old, sections));
    log(`wrote ${path.relative(REPO_ROOT, RESULTS)}`);
  }
  log(`all done in ${Math.round((performance.now() - t0) / 1000)} s`);
  const broke = runs.filter((r) => r.error);
  if (broke.length > 0) {
    log(`broke: ${broke.map((r) => `${r.name} (${r.error})`).join(', ')}`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
