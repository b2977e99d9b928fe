/**
 * Structured logs. The only winston importer: the rest of berth sees the small Logger interface.
 * Messages are short and lowercase; details go in fields.
 */
import winston from 'winston';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every record. */
  child(fields: LogFields): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

class WinstonLogger implements Logger {
  constructor(private readonly w: winston.Logger) {}
  debug(msg: string, fields?: LogFields): void {
    this.w.debug(msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.w.info(msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.w.warn(msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.w.error(msg, fields);
  }
  child(fields: LogFields): Logger {
    return new WinstonLogger(this.w.child(fields));
  }
}

/**
 * A JSON-lines logger writing to stderr (so stdout stays free for command output), or to a file.
 */
export function createLogger(opts: { level?: LogLevel; file?: string; fields?: LogFields } = {}): Logger {
  const level = opts.level ?? 'info';
  const transport = opts.file
    ? new winston.transports.File({ filename: opts.file })
    : new winston.transports.Stream({ stream: process.stderr });
  const w = winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    defaultMeta: opts.fields,
    transports: [transport],
  });
  return new WinstonLogger(w);
}

/** A logger that drops everything, for tests of pure logic. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
