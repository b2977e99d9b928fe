/**
 * Log lines about what peers do (failed logins, refused connections), keyed by the peer's address,
 * so that a flood of them never floods the log: in each window, at most `perSource` lines per
 * address and `total` lines in all are written; the rest are counted, and when the window ends one
 * summary line says how many were left out, and from which addresses the most.
 */
import { LogFields, Logger } from './logging';

export interface RateLimit {
  /** Lines written per address in one window. */
  perSource: number;
  /** Lines written in one window, all addresses together. */
  total: number;
  windowMs: number;
  /** Addresses counted one by one in a window; lines from further ones count as one crowd. */
  maxSources: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { perSource: 5, total: 50, windowMs: 60_000, maxSources: 1000 };

/** How many addresses (those with the most lines left out) the summary names. */
const SUMMARY_TOP = 5;

type Level = 'info' | 'warn';

interface Window {
  written: number;
  /** Lines written and left out, per address. */
  sources: Map<string, { written: number; left: number }>;
  /** Lines left out, all addresses together (also those past maxSources). */
  left: number;
  timer: NodeJS.Timeout;
}

export class RateLimitedLog {
  private window: Window | null = null;

  constructor(
    private readonly log: Logger,
    private readonly limit: RateLimit = DEFAULT_RATE_LIMIT,
  ) {}

  /** Writes one line about `source` unless its address, or everyone, used up this window; else counts it. */
  write(level: Level, source: string, msg: string, fields: LogFields): void {
    const w = (this.window ??= this.open());
    let s = w.sources.get(source);
    if (!s && w.sources.size < this.limit.maxSources) {
      s = { written: 0, left: 0 };
      w.sources.set(source, s);
    }
    if (s && s.written < this.limit.perSource && w.written < this.limit.total) {
      s.written++;
      w.written++;
      this.log[level](msg, fields);
      return;
    }
    if (s) s.left++;
    w.left++;
  }

  /** Ends the window now: its summary line, if anything was left out. Idempotent. */
  flush(): void {
    const w = this.window;
    if (!w) return;
    this.window = null;
    clearTimeout(w.timer);
    if (w.left === 0) return;
    const top = [...w.sources]
      .filter(([, s]) => s.left > 0)
      .sort((a, b) => b[1].left - a[1].left)
      .slice(0, SUMMARY_TOP)
      .map(([address, s]) => ({ address, left: s.left }));
    this.log.warn('log lines left out', { left: w.left, windowSeconds: this.limit.windowMs / 1000, top });
  }

  private open(): Window {
    const timer = setTimeout(() => this.flush(), this.limit.windowMs);
    timer.unref();
    return { written: 0, sources: new Map(), left: 0, timer };
  }
}
