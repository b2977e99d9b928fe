/** The audit log: one JSON line per operation, attach and detach, appended (never rewritten). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Logger } from '../common/logging';

export interface AuditRecord {
  operator: string;
  /** The op (create, kill, …), or attach / detach. */
  op: string;
  session?: string;
  agent?: string;
  result: 'ok' | 'error';
  code?: string;
  message?: string;
  detail?: Record<string, unknown>;
}

export class AuditLog {
  private ready: Promise<void> | null = null;

  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {}

  /** Appends one record with a timestamp. Never throws: a failed write is logged as an error. */
  async record(r: AuditRecord): Promise<void> {
    const line = `${JSON.stringify({ ts: new Date().toISOString(), ...r })}\n`;
    try {
      this.ready ??= fs.mkdir(path.dirname(this.file), { recursive: true }).then(() => undefined);
      await this.ready;
      // One write per record with O_APPEND: lines from concurrent records never interleave.
      await fs.appendFile(this.file, line, { mode: 0o640 });
    } catch (err) {
      this.logger.error('audit write failed', { file: this.file, err: (err as Error).message, record: r });
    }
  }
}
