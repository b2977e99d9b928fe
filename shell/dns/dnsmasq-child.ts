/**
 * One dnsmasq process of the shell's own: started tied to the shell (it dies with it, however the
 * shell dies), and known by a probe record only it serves: a TXT record with a fresh random nonce.
 * It counts as started only once that nonce answers on its port; a DNS server that answers there
 * without it is another process holding the port, and is refused as such. It answers the cluster
 * domain from our hosts file alone and forwards every other name to the upstream servers it is
 * given (none: it answers the domain only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promises as dns } from 'node:dns';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { tiedArgv } from '../../common/tied-child';

/** What our dnsmasq serves, and where. */
export interface Managed {
  domain: string;
  hostsFile: string;
  manage: { listenAddress: string; port: number };
}

const START_TIMEOUT_MS = 5_000;
const STOP_WAIT_MS = 3_000;
const PROBE_LABEL = '_berth-probe';

/** The name our dnsmasq answers with its nonce (a TXT record). */
export function probeName(domain: string): string {
  return `${PROBE_LABEL}.${domain}`;
}

/** host:port as one would type it (IPv6 in brackets). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * dnsmasq's arguments: our domain from our file only, never forwarded; other names with a dot to
 * `upstream` ("IP" or "IP#PORT", checked already) and only there; one address.
 */
function dnsmasqArgs(o: Managed, upstream: readonly string[], nonce: string): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null', // not /etc/dnsmasq.conf
    '--no-resolv', // no resolv.conf of its own choosing: the servers below are all it asks
    ...upstream.map((server) => `--server=${server}`),
    '--no-hosts', // not /etc/hosts
    `--addn-hosts=${o.hostsFile}`,
    `--local=/${o.domain}/`, // answered from our file only, NXDOMAIN otherwise, never forwarded
    '--domain-needed', // plain names are never forwarded
    '--bind-interfaces',
    `--listen-address=${o.manage.listenAddress}`,
    `--port=${o.manage.port}`,
    `--txt-record=${probeName(o.domain)},${nonce}`, // how we know it is this one answering
    '--pid-file=', // none: we hold the pid
    '--log-facility=-', // stderr, which we log
    // Started as root, dnsmasq drops to "nobody", which then cannot read a file in a private
    // folder (it reads it after dropping). Root stays root, in user and group: any change of
    // credentials would clear the death signal that ties it to the shell. Anyone else cannot
    // switch anyway.
    ...(process.getuid?.() === 0 ? ['--user=root', '--group=root'] : []),
  ];
}

/** Debian's dnsmasq-base is in /usr/sbin, which a non-root PATH may lack. */
const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/local/sbin/dnsmasq', '/sbin/dnsmasq'].find((f) => existsSync(f)) ?? 'dnsmasq';

/** Error codes that still mean a DNS server replied (it just had no such record for us). */
const REPLIED = ['ENOTFOUND', 'ENODATA', 'EREFUSED', 'ESERVFAIL', 'ENOTIMP', 'EFORMERR', 'EBADRESP'];

/** Who answers the probe at host:port: our dnsmasq (with `nonce`), another server, or nobody. */
async function probe(host: string, port: number, name: string, nonce: string): Promise<'ours' | 'other' | 'none'> {
  const resolver = new dns.Resolver({ timeout: 250, tries: 1 });
  resolver.setServers([hostPort(host, port)]);
  try {
    const records = await resolver.resolveTxt(name);
    return records.some((chunks) => chunks.join('') === nonce) ? 'ours' : 'other';
  } catch (err) {
    return REPLIED.includes((err as { code?: string }).code ?? '') ? 'other' : 'none';
  }
}

/** Waits for `p`, at most `ms`, leaving no timer behind. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  const timer = new AbortController();
  await Promise.race([p, sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined)]);
  timer.abort();
}

/** One dnsmasq process: `started` resolves once it answers, or rejects (and kills it) if it cannot. */
export class DnsmasqChild {
  readonly started: Promise<void>;
  readonly pid: number | undefined;
  ready = false;
  readyAt = 0;
  alive = true;
  /** Called once if it exits after it was answering and nobody asked it to stop. */
  onUnexpectedExit: (why: string) => void = () => undefined;
  private readonly proc: ChildProcess;
  private readonly exit: Promise<string>;
  private readonly stderrDone: Promise<void>;
  private stopRequested = false;
  private readonly lastWords: string[] = [];

  /** `upstream`: the servers other names go to, checked already (see upstream.ts); [] for none. */
  constructor(o: Managed, upstream: readonly string[], log: Logger) {
    const nonce = randomBytes(16).toString('hex');
    const [file, ...args] = tiedArgv([DNSMASQ, ...dnsmasqArgs(o, upstream, nonce)]);
    this.proc = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.pid = this.proc.pid;
    const lines = readline.createInterface({ input: this.proc.stderr! });
    lines.on('line', (line) => {
      if (!line.trim()) return;
      if (this.lastWords.push(line) > 5) this.lastWords.shift();
      // With no upstream on purpose, dnsmasq's "no upstream servers" warning is expected (the
      // service said so once); with some, it means they were all refused, as is one it ignores.
      const expected = upstream.length === 0 && /no upstream servers/.test(line);
      const bad = (/failed|error|warning/i.test(line) || /ignoring nameserver/.test(line)) && !expected;
      log[bad ? 'warn' : 'debug']('dnsmasq says', { pid: this.pid, line });
    });
    this.stderrDone = new Promise((resolve) => lines.once('close', resolve));
    this.exit = new Promise<string>((resolve) => {
      this.proc.once('exit', (code, sig) => resolve(sig ? `killed by ${sig}` : `exit code ${code}`));
      this.proc.once('error', (err) => this.pid === undefined && resolve(`cannot run ${file}: ${err.message}`));
    });
    void this.exit.then((why) => {
      const wasReady = this.ready;
      this.alive = this.ready = false;
      if (wasReady && !this.stopRequested) this.onUnexpectedExit(why);
    });
    this.started = this.waitReady(o, nonce);
  }

  /**
   * Resolves once the probe answers with our nonce. Otherwise stops it and throws BerthError
   * PORT_UNAVAILABLE if another process holds the port (another DNS server answers there, or
   * dnsmasq found the address in use), INTERNAL for anything else; both with dnsmasq's last words.
   */
  private async waitReady(o: Managed, nonce: string): Promise<void> {
    const { listenAddress: host, port } = o.manage;
    const name = probeName(o.domain);
    const deadline = Date.now() + START_TIMEOUT_MS;
    let heard: 'ours' | 'other' | 'none' = 'none';
    while (this.alive && !this.stopRequested && Date.now() < deadline) {
      heard = await probe(host, port, name, nonce);
      if (heard === 'ours' && this.alive && !this.stopRequested) {
        this.ready = true;
        this.readyAt = Date.now();
        return;
      }
      await sleep(50);
    }
    const asked = this.stopRequested;
    const why = !this.alive ? await this.exit : asked ? 'stopped' : `no answer within ${START_TIMEOUT_MS} ms`;
    await this.stop();
    await within(this.stderrDone, 200); // its last words
    const said = this.lastWords.length ? ` (dnsmasq said: ${this.lastWords.join(' | ')})` : '';
    const where = hostPort(host, port);
    // Ours is gone now: whoever still answers there is someone else.
    if (!asked && (heard === 'other' || (await probe(host, port, name, nonce)) === 'other')) {
      throw new BerthError('PORT_UNAVAILABLE', `start dnsmasq on ${where}: another process holds this port (a DNS server that is not this shell's answers there)${said}`);
    }
    if (!asked && this.lastWords.some((l) => /address already in use/i.test(l))) {
      throw new BerthError('PORT_UNAVAILABLE', `start dnsmasq on ${where}: another process holds this port${said}`);
    }
    throw new BerthError('INTERNAL', `start dnsmasq on ${where}: ${why}${said}`);
  }

  /** SIGHUP: dnsmasq re-reads the addn-hosts file. Only once it answers (before, SIGHUP kills it). */
  reload(): void {
    if (this.ready) this.proc.kill('SIGHUP');
  }

  /** SIGTERM, a bounded wait, then SIGKILL. Idempotent; resolves once it is gone (or gave up). */
  async stop(): Promise<void> {
    this.stopRequested = true;
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      if (!this.alive) return;
      this.proc.kill(sig);
      await within(this.exit, STOP_WAIT_MS);
    }
  }

  /** Synchronous SIGKILL, for the shell's own exit. */
  killNow(): void {
    if (this.alive) this.proc.kill('SIGKILL');
  }
}
