/** What the benchmarks share: statistics, bounded waits, and a terminal to type into and time. */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Linear-interpolated quantile of `values` (q in 0..1); NaN for none. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] ?? 0) + ((s[hi] ?? 0) - (s[lo] ?? 0)) * (pos - lo);
}

export interface Stats {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

export function stats(v: number[]): Stats {
  return { n: v.length, median: round(quantile(v, 0.5)), p90: round(quantile(v, 0.9)), min: round(Math.min(...v)), max: round(Math.max(...v)) };
}

/** Rejects with a clear message when `p` takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

// eslint-disable-next-line no-control-regex -- terminal escape sequences are control characters by definition
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[ -/]*[0-~])/g;

/** The printable text of terminal output: complete escape sequences removed. */
export const visible = (s: string): string => s.replace(ESCAPES, '');

/** A terminal the bench types into and watches (an attach channel, or a client under a pty). */
export class Term {
  private listener: ((d: Buffer) => void) | null = null;
  /** Everything received, for waits on the first screen and for error messages. */
  output = '';
  lastData = performance.now();

  constructor(
    readonly name: string,
    private readonly send: (s: string) => void,
    subscribe: (cb: (d: Buffer) => void) => void,
    private readonly keyTimeoutMs = 5000,
  ) {
    subscribe((d) => {
      this.lastData = performance.now();
      this.output += d.toString('utf8');
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
      this.listener?.(d);
    });
  }

  /** Resolves with the ms it took once the visible output (from `from` on) passes `pred`. */
  waitVisible(pred: (text: string) => boolean, timeoutMs: number, what: string, from = 0): Promise<number> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (!pred(visible(this.output.slice(from)))) return false;
        clearTimeout(timer);
        this.listener = null;
        resolve(performance.now() - t0);
        return true;
      };
      const timer = setTimeout(() => {
        this.listener = null;
        reject(new Error(`${this.name}: ${what} not seen within ${timeoutMs} ms; output tail: ${JSON.stringify(this.output.slice(-300))}`));
      }, timeoutMs);
      if (!check()) this.listener = () => void check();
    });
  }

  /** Writes one key and resolves with the ms until output containing it arrives. */
  keystroke(key: string): Promise<number> {
    return new Promise((resolve, reject) => {
      let acc = '';
      const timer = setTimeout(() => {
        this.listener = null;
        reject(new Error(`${this.name}: echo of "${key}" not seen within ${this.keyTimeoutMs} ms; received: ${JSON.stringify(acc.slice(-300))}`));
      }, this.keyTimeoutMs);
      const t0 = performance.now();
      this.listener = (d) => {
        acc += d.toString('utf8');
        if (!visible(acc).includes(key)) return;
        clearTimeout(timer);
        this.listener = null;
        resolve(performance.now() - t0);
      };
      this.send(key);
    });
  }

  write(s: string): void {
    this.send(s);
  }
}

/** Waits until none of `terms` received anything for `quietMs` (at most `maxMs`). */
export async function settle(terms: Term[], quietMs = 40, maxMs = 2000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const now = performance.now();
    if (now - Math.max(...terms.map((t) => t.lastData)) >= quietMs || now - t0 >= maxMs) return;
    await sleep(quietMs / 4);
  }
}

/**
 * What to add to performance.now() for ms since the epoch, as `date +%s%N` in a container reads
 * them (the same kernel's CLOCK_REALTIME), at the monotonic clock's resolution: Date.now() counts
 * whole ms only, so this spins (at most 2 ms) until it ticks and takes the offset at that edge,
 * good to a few µs. Take it afresh for each measurement: under NTP the clocks drift a few ppm apart.
 */
export function wallOffset(): number {
  const start = Date.now();
  const limit = performance.now() + 2;
  let wall = start;
  let mono = performance.now();
  while (wall === start && mono < limit) {
    wall = Date.now();
    mono = performance.now();
  }
  return wall - mono;
}

/** Runs a benchmark's `main` and exits: 0 when it finished, 1 (its error said through `log`) when it failed. */
export function runBench(main: () => Promise<void>, log: (line: string) => void): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}

// ---- reports: what every benchmark hands to `npm run bench` ----

/** A target a figure is held to: its median (or its ratio's median) at most or at least `value`. */
export interface Target {
  of: 'value' | 'ratio';
  op: '<=' | '>=';
  value: number;
}

/**
 * One figure of a benchmark: a value per repeated block (a block's median, or one measurement per
 * block), and, where there is a direct path that does the same without berth, that path's value in
 * the same blocks, measured interleaved. The ratio is ours ÷ direct, block by block.
 */
export interface Figure {
  /** Stable and unique across all benchmarks, e.g. `shell.echo`. */
  key: string;
  label: string;
  /** `ms`, `MB/s`, `MB`, `s`, … */
  unit: string;
  values: number[];
  direct?: { label: string; values: number[] };
  target?: Target;
  /** One line of context (what dominates the figure, how many samples a block holds). */
  note?: string;
}

/** A table a benchmark adds as it is (the scale benchmark's growth table). */
export interface ReportTable {
  title: string;
  head: string[];
  rows: string[][];
}

export interface BenchReport {
  bench: string;
  /** What was run: sizes and counts, in a few words (`500 sessions, 3 blocks`). */
  setup: string;
  figures: Figure[];
  tables?: ReportTable[];
  notes?: string[];
  seconds: number;
}

/** A report's last line on stdout starts with this; `npm run bench` reads it. */
export const REPORT_PREFIX = 'BENCH-REPORT ';

export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function summary(v: number[]): Summary {
  return { n: v.length, min: Math.min(...v), median: quantile(v, 0.5), max: Math.max(...v) };
}

/** Ours ÷ direct, block by block (blocks without both are left out). */
export function ratios(f: Figure): number[] {
  if (!f.direct) return [];
  const d = f.direct.values;
  return f.values.flatMap((v, i) => (d[i] !== undefined && d[i] > 0 ? [v / d[i]] : []));
}

/** Whether the figure meets its target (null without one). */
export function met(f: Figure): boolean | null {
  const t = f.target;
  if (!t) return null;
  const v = t.of === 'ratio' ? quantile(ratios(f), 0.5) : quantile(f.values, 0.5);
  if (Number.isNaN(v)) return false;
  return t.op === '<=' ? v <= t.value : v >= t.value;
}

/** Prints the report as the last line of stdout (after any table a benchmark prints for people). */
export function printReport(r: BenchReport): void {
  for (const f of r.figures) {
    if (f.values.length === 0 || f.values.some((v) => !Number.isFinite(v))) throw new Error(`figure ${f.key} has no values or a value that is not a number`);
    if (f.direct && f.direct.values.length !== f.values.length) throw new Error(`figure ${f.key}: ${f.values.length} blocks of ours against ${f.direct.values.length} direct`);
  }
  process.stdout.write(`${REPORT_PREFIX}${JSON.stringify(r)}\n`);
}

/** Splits `values` into `blocks` consecutive blocks and gives each block's median. */
export function blockMedians(values: number[], blocks: number): number[] {
  const size = Math.max(1, Math.floor(values.length / blocks));
  const out: number[] = [];
  for (let i = 0; i + size <= values.length && out.length < blocks; i += size) out.push(quantile(values.slice(i, i + size), 0.5));
  return out;
}

/**
 * Starts relay.ts (a bare Node relay process) from LISTEN to TARGET, each `tcp:PORT` or
 * `unix:PATH`; resolves with the process once it listens. It exits when its stdin closes, so it
 * never outlives the bench; end it earlier with SIGTERM.
 */
export async function startRelay(listen: string, target: string): Promise<ChildProcess> {
  const relay = spawn(process.execPath, [path.join(__dirname, 'relay.js'), listen, target], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    relay.stdout?.once('data', () => resolve());
    relay.once('exit', (code) => reject(new Error(`relay ${listen} → ${target} exited ${code}`)));
  });
  await withTimeout(ready, 10_000, `relay ${listen} → ${target} listening`).catch((err: unknown) => {
    relay.kill('SIGKILL');
    throw err;
  });
  return relay;
}
