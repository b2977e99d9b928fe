/**
 * The cluster's DNS names: the shell owns dnsmasq's addn-hosts file and makes dnsmasq re-read it
 * (SIGHUP) after each change. Either it runs and supervises its own dnsmasq on a loopback port
 * (managed), or it signals a dnsmasq someone else runs (unmanaged, through its pid file).
 * A managed dnsmasq is known by the probe record only it serves (dnsmasq-child.ts), dies with the
 * shell, and is recorded next to the hosts file so that one an earlier shell left is ended
 * (pid-record.ts). It answers the domain itself and forwards other names upstream (upstream.ts).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BerthError, messageOf, wrapError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { Mutex } from '../../common/mutex';
import { writeFileAtomic } from '../../common/atomic-file';
import { DnsmasqChild, hostPort, type Managed } from './dnsmasq-child';
import { checkDomain, renderHosts, type DnsRecord } from './hosts';
import { endLeftover, pidRecordFile, removePidRecord, writePidRecord } from './pid-record';
import { findUpstream, RESOLV_CONF, upstreamProblem } from './upstream';

export interface DnsOptions {
  /** e.g. "berth": records resolve as <name>.<domain>. */
  domain: string;
  /** The addn-hosts file the shell owns. */
  hostsFile: string;
  /**
   * Run and supervise our own dnsmasq on this address and port; null: only write the file and
   * signal `pidFile`'s process if given. Names outside the domain go to `upstream` ("IP" or
   * "IP#PORT"; [] for none), or when it is not given to the nameservers of `resolvConf`.
   */
  manage: { listenAddress: string; port: number; upstream?: readonly string[] } | null;
  /** For an unmanaged dnsmasq: SIGHUP the pid written in this file after each change. */
  pidFile?: string;
  /** The host's resolvers, read at each start of a managed dnsmasq without `upstream`; default /etc/resolv.conf. */
  resolvConf?: string;
  logger: Logger;
}

export interface Dns {
  /**
   * Replaces the whole record set: writes the hosts file atomically (temp, fsync, rename) and
   * makes dnsmasq reload (SIGHUP). Idempotent; applies run one at a time in call order. Throws
   * BerthError BAD_REQUEST (nothing written) for an invalid record, INTERNAL with context if the
   * file cannot be written or (unmanaged) the pid file's process cannot be signalled. Resolves
   * only after dnsmasq was signalled; while a managed dnsmasq is being restarted, or after
   * stop(), it resolves once the file is written (a starting dnsmasq reads the file, and is
   * signalled again once it answers if the file changed meanwhile).
   */
  apply(records: DnsRecord[]): Promise<void>;
  /** Where dnsmasq answers (managed) or null. */
  readonly address: { host: string; port: number } | null;
  /** For tests: the pid of the managed dnsmasq right now (undefined while none runs, or unmanaged). */
  readonly pid?: number;
  /** Stops a managed dnsmasq (SIGTERM, bounded wait, then SIGKILL) and its supervision. Idempotent. */
  stop(): Promise<void>;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;
/** A dnsmasq that ran this long before dying restarts after the shortest delay again. */
const HEALTHY_AFTER_MS = 30_000;

/**
 * Starts the DNS side of the shell. Writes an empty hosts file if none exists, creating its folder
 * (one level); an existing file is kept: it is the last set applied, so names keep resolving
 * across a shell restart. Managed: first ends a dnsmasq an earlier shell of this hosts file left
 * running (only that one, as its pid record names it), then resolves once our dnsmasq answers
 * its probe. Throws BerthError BAD_REQUEST for an invalid domain, listen address/port or upstream
 * entry (naming it), PORT_UNAVAILABLE naming host:port if another process holds the port (e.g.
 * another DNS server answers there), INTERNAL if dnsmasq cannot be started otherwise; both with
 * dnsmasq's last words.
 * A failed start leaves no dnsmasq of ours running.
 */
export async function startDns(opts: DnsOptions): Promise<Dns> {
  checkDomain(opts.domain);
  const m = opts.manage;
  if (m && (net.isIP(m.listenAddress) === 0 || !Number.isInteger(m.port) || m.port < 1 || m.port > 65535)) {
    throw new BerthError('BAD_REQUEST', `dns listen address ${JSON.stringify(m.listenAddress)} port ${m.port}: must be an IP address and a port 1-65535`);
  }
  for (const entry of m?.upstream ?? []) {
    const problem = upstreamProblem(entry);
    if (problem) throw new BerthError('BAD_REQUEST', `dns upstream ${JSON.stringify(entry)}: ${problem}`);
  }
  const dns = new DnsService(opts);
  await dns.start();
  return dns;
}

class DnsService implements Dns {
  readonly address: { host: string; port: number } | null;
  private readonly log: Logger;
  private readonly mutex = new Mutex();
  private records: DnsRecord[] | null = null;
  /** Bumped on every write of the file, to know whether a starting dnsmasq saw the latest. */
  private generation = 0;
  private child: DnsmasqChild | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private backoffMs = BACKOFF_MIN_MS;
  private stopping: Promise<void> | null = null;
  private readonly onProcessExit = (): void => this.child?.killNow();
  private readonly pidRecord: string;
  /** The upstream last logged, so that each one is said once, not at every restart. */
  private upstreamSaid = '';

  constructor(private readonly opts: DnsOptions) {
    this.log = opts.logger.child({ component: 'dns' });
    this.pidRecord = pidRecordFile(opts.hostsFile);
    this.address = opts.manage ? { host: opts.manage.listenAddress, port: opts.manage.port } : null;
  }

  get pid(): number | undefined {
    return this.child?.alive ? this.child.pid : undefined;
  }

  async start(): Promise<void> {
    const exists = await fs.stat(this.opts.hostsFile).then(() => true, () => false);
    if (!exists) {
      // Its folder, one level only (Node 20's recursive mkdir can spin forever, e.g. under /proc).
      await fs.mkdir(path.dirname(this.opts.hostsFile)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw wrapError(`create the folder of dns hosts file ${this.opts.hostsFile}`, err);
      });
      await this.mutex.run(() => this.write([]));
    }
    if (!this.opts.manage) return;
    process.on('exit', this.onProcessExit);
    try {
      await this.spawn();
    } catch (err) {
      process.off('exit', this.onProcessExit);
      throw err;
    }
  }

  async apply(records: DnsRecord[]): Promise<void> {
    const text = renderHosts(this.opts.domain, records);
    await this.mutex.run(async () => {
      await this.write(records, text);
      await this.signal();
    });
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.restartTimer) clearTimeout(this.restartTimer);
      this.restartTimer = null;
      process.off('exit', this.onProcessExit);
      const child = this.child;
      this.child = null;
      if (child) {
        await child.stop();
        if (child.pid !== undefined) await removePidRecord(this.pidRecord, child.pid);
        this.log.info('stopped dnsmasq', { pid: child.pid });
      }
    })();
    return this.stopping;
  }

  /** Writes the file for `records` (in the mutex). Throws BerthError INTERNAL with context. */
  private async write(records: DnsRecord[], text = renderHosts(this.opts.domain, records)): Promise<void> {
    try {
      await writeFileAtomic(this.opts.hostsFile, text);
    } catch (err) {
      throw wrapError(`write dns hosts file ${this.opts.hostsFile}`, err);
    }
    this.records = [...records];
    this.generation++;
    this.log.debug('wrote dns hosts file', { file: this.opts.hostsFile, records: records.length });
  }

  /** Makes dnsmasq re-read the file, as far as one can be told to right now. */
  private async signal(): Promise<void> {
    if (this.opts.manage) {
      if (this.child?.ready) {
        this.child.reload();
        this.log.debug('signalled dnsmasq', { pid: this.child.pid });
      } else {
        this.log.debug('dnsmasq not running; it reads the file when it starts');
      }
      return;
    }
    if (!this.opts.pidFile) return;
    try {
      const text = await fs.readFile(this.opts.pidFile, 'utf8');
      const pid = Number(text.trim());
      if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no pid in it: ${JSON.stringify(text.slice(0, 40))}`);
      process.kill(pid, 'SIGHUP');
      this.log.debug('signalled dnsmasq', { pid, pidFile: this.opts.pidFile });
    } catch (err) {
      throw new BerthError('INTERNAL', `signal dnsmasq (pid file ${this.opts.pidFile}): ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Ends a dnsmasq an earlier shell left, starts ours and resolves once it answers its probe;
   * throws (and leaves none of ours running) if it cannot.
   */
  private async spawn(): Promise<void> {
    const opts = this.opts as Managed;
    await endLeftover(this.pidRecord, opts.hostsFile, this.log);
    if (this.stopping) return;
    const upstream = await this.upstream();
    if (this.stopping) return;
    const seen = this.generation;
    const child = new DnsmasqChild(opts, upstream, this.log);
    this.child = child;
    child.onUnexpectedExit = (why) => this.exited(child, why);
    // Recorded while it starts (this never throws); `started` is awaited at once, so its failure
    // is always handled.
    const recorded = child.pid !== undefined ? writePidRecord(this.pidRecord, child.pid, this.log) : Promise.resolve();
    try {
      await child.started;
    } catch (err) {
      if (this.child === child) this.child = null;
      await recorded;
      if (child.pid !== undefined) await removePidRecord(this.pidRecord, child.pid);
      throw err;
    }
    await recorded;
    if (this.stopping) return; // stop() took care of it
    this.log.info('started dnsmasq', { pid: child.pid, host: opts.manage.listenAddress, port: opts.manage.port, upstream });
    // An apply that came while it was starting may have written after dnsmasq read the file.
    if (this.generation !== seen) child.reload();
  }

  /**
   * The servers a starting dnsmasq forwards to: the configured ones, else the host's (read now, so
   * a restart sees a changed file). Logs what it found when that differs from the last time.
   */
  private async upstream(): Promise<string[]> {
    const m = this.opts.manage;
    if (!m) return [];
    const found = await findUpstream(m.upstream, this.opts.resolvConf ?? RESOLV_CONF, { address: m.listenAddress, port: m.port });
    const said = JSON.stringify(found);
    if (said !== this.upstreamSaid) {
      this.upstreamSaid = said;
      const { servers, from, dropped, problem } = found;
      const domain = this.opts.domain;
      if (dropped.length > 0) this.log.warn('upstream names this dnsmasq itself; left out', { dropped, from });
      if (servers.length > 0) this.log.info('forwarding names outside the domain upstream', { domain, servers, from });
      else this.log[problem ? 'warn' : 'info']('no upstream servers; only names of the domain are answered', { domain, from, problem });
    }
    return found.servers;
  }

  /** Our dnsmasq died after it was answering: restart it after the current backoff. */
  private exited(child: DnsmasqChild, why: string): void {
    if (this.child !== child || this.stopping) return;
    this.child = null;
    if (Date.now() - child.readyAt >= HEALTHY_AFTER_MS) this.backoffMs = BACKOFF_MIN_MS;
    this.log.warn('dnsmasq exited; restarting', { pid: child.pid, why, inMs: this.backoffMs });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.restart();
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    // The restarted dnsmasq reads the current set, even if someone removed or changed the file
    // (before the first apply the file as found at start is the current set).
    if (this.records) {
      await this.mutex.run(() => this.write(this.records ?? [])).catch((err) => {
        this.log.warn('could not rewrite dns hosts file before restart', { error: messageOf(err) });
      });
    }
    if (this.stopping) return; // checked again: stop() may have come while we wrote
    try {
      await this.spawn();
    } catch (err) {
      if (this.stopping) return;
      const { listenAddress: host, port } = (this.opts as Managed).manage;
      const fields = { address: hostPort(host, port), error: messageOf(err), retryInMs: this.backoffMs };
      if (err instanceof BerthError && err.code === 'PORT_UNAVAILABLE') {
        this.log.error('dns port held by another process; names are not served until it is free', fields);
      } else {
        this.log.warn('dnsmasq restart failed', fields);
      }
      this.scheduleRestart();
    }
  }
}
