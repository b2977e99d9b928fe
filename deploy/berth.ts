#!/usr/bin/env node
/**
 * The `berth` program: one binary, subcommands for each part. Usage errors exit 2, refused or
 * failed commands exit 1 with `error: CODE: message` on stderr.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BerthError, messageOf, toBerthError } from '../common/errors';
import { PROTOCOL_VERSION } from '../common/protocol';
import { BUILD } from '../common/build-info';
import { hostKeyPath, loadAgentConfig, trustedKeysPath } from '../agent/config';
import { startAgent } from '../agent/main';
import { authorizeKey, ensureHostKey, publicKeyOf } from '../agent/rpc/keys';
import { DEFAULT_IMAGE, buildImage } from './image/build';
import { ensureKeyFile } from '../common/ssh-keys';
import { createLogger } from '../common/logging';
import { loadShellConfig, shellPaths } from '../shell/config';
import { probeFingerprint, readAgents, removeAgent, upsertAgent } from '../shell/agents';
import { PinnedJump, fingerprintSchema, parseJump } from '../shell/agents/enrolled';
import { startShell } from '../shell/main';
import { describeChanges } from '../shell/live-config';
import { errorLine, versionText } from '../shell/cli/format';
import { defaultDemoDir, demoUser, runDemo } from './demo';

const USAGE = `usage: berth <command>

  agent serve --config FILE              run the agent of this host
  agent authorize-shell --config FILE (KEY | --key-file FILE)
                                         trust a shell's public key
  agent fingerprint --config FILE        print this agent's host key fingerprint
  shell serve --config FILE              run the cluster's SSH entry point
  shell add-agent --config FILE --id ID --host H --port P [--fingerprint SHA256:…] [--address IP]
        [--jump USER@HOST:PORT [--jump-fingerprint SHA256:…]]
                                         enrol an agent (its host key is pinned), reached
                                         through a bastion with --jump (its key pinned too)
  shell remove-agent --config FILE --id ID
  shell agents --config FILE             the enrolled agents
  shell show-key --config FILE           the public key agents must trust (authorize-shell)
  image build [--tag T] [--if-missing] [--suite S] [--mirror URL]
                                         build the session image offline (debootstrap)
  demo [--dir D] [--port P] [--dns-port P]
                                         a local cluster in the foreground (npm run demo)
  version                                print the version, commit and build date
`;

class UsageError extends Error {}

type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parse(args: string[], options: Options, positionals = 0) {
  let r;
  try {
    r = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (r.positionals.length > positionals) throw new UsageError(`unexpected argument: ${r.positionals[positionals]}`);
  return r;
}

function opt(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function need(v: string | boolean | undefined, flag: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing ${flag}`);
  return v;
}

async function agentCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'serve': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const cfg = loadAgentConfig(need(values.config, '--config FILE'));
      const agent = await startAgent({ config: cfg });
      process.stdout.write(`berth agent ${cfg.id} listening on ${agent.host}:${agent.port} host key ${agent.fingerprint}\n`);
      stopOnSignal(agent, (sig) => `berth agent ${cfg.id} stopping (${sig}); containers keep running`);
      return;
    }
    case 'authorize-shell': {
      const { values, positionals } = parse(rest, { config: { type: 'string', short: 'c' }, 'key-file': { type: 'string' } }, 1);
      const cfg = loadAgentConfig(need(values.config, '--config FILE'));
      const keyFile = values['key-file'];
      const line = typeof keyFile === 'string' ? readFileSync(keyFile, 'utf8').trim() : positionals[0];
      if (!line) throw new UsageError('give the shell public key as an argument or with --key-file FILE');
      const r = await authorizeKey(trustedKeysPath(cfg), line);
      process.stdout.write(r === 'added' ? `trusted shell key added to ${trustedKeysPath(cfg)}\n` : 'shell key was already trusted\n');
      return;
    }
    case 'fingerprint': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const cfg = loadAgentConfig(need(values.config, '--config FILE'));
      process.stdout.write(`${publicKeyOf(await ensureHostKey(hostKeyPath(cfg))).fingerprint}\n`);
      return;
    }
    default:
      throw new UsageError(sub ? `unknown agent command: ${sub}` : 'missing agent command');
  }
}

/**
 * add-agent's bastion: `--jump` checked part by part, and its host key, from `--jump-fingerprint`
 * or else as the bastion presents it now (said, so the operator can compare). Undefined without
 * `--jump`. Throws UsageError for a bad flag, AGENT_OFFLINE when the bastion does not answer.
 */
async function pinJump(text: string | undefined, given: string | undefined, out: (l: string) => void): Promise<PinnedJump | undefined> {
  if (text === undefined) {
    if (given !== undefined) throw new UsageError('--jump-fingerprint needs --jump USER@HOST:PORT');
    return undefined;
  }
  const r = parseJump(text);
  if (!r.ok) throw new UsageError(`--jump: ${r.problem}`);
  if (given !== undefined && !fingerprintSchema.safeParse(given).success) {
    throw new UsageError('--jump-fingerprint must be an OpenSSH SHA256 fingerprint (SHA256: and 43 characters)');
  }
  if (given) return { ...r.jump, fingerprint: given };
  const seen = await probeFingerprint(r.jump.host, r.jump.port);
  out(`pinned the host key the bastion presents now: ${seen}`);
  out('  check it against `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the bastion');
  return { ...r.jump, fingerprint: seen };
}

/** On SIGINT or SIGTERM: say so, stop `what`, and exit 0 (1 if stopping failed). */
function stopOnSignal(what: { stop(): Promise<void> }, saying: (signal: string) => string): void {
  const stop = (sig: string): void => {
    process.stdout.write(`${saying(sig)}\n`);
    what.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function shellCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const out = (l: string): void => void process.stdout.write(`${l}\n`);
  switch (sub) {
    case 'serve': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const file = need(values.config, '--config FILE');
      const cfg = loadShellConfig(file);
      const logger = createLogger({ level: cfg.log.level, file: cfg.log.file });
      const shell = await startShell({ config: cfg, configFile: file, logger });
      out(`berth shell listening on ${shell.host}:${shell.port}${shell.dns ? ` dns ${shell.dns.host}:${shell.dns.port}` : ''}`);
      // systemctl reload: operators and agents change; everyone stays connected.
      process.on('SIGHUP', () => {
        shell.reload().then(
          (c) => out(`berth shell reloaded: ${describeChanges(c)}`),
          (err: unknown) => out(`berth shell reload refused, running config kept: ${messageOf(err)}`),
        );
      });
      stopOnSignal(shell, (sig) => `berth shell stopping (${sig})`);
      return;
    }
    case 'add-agent': {
      const { values } = parse(rest, {
        config: { type: 'string', short: 'c' },
        id: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        fingerprint: { type: 'string' },
        address: { type: 'string' },
        jump: { type: 'string' },
        'jump-fingerprint': { type: 'string' },
      });
      const cfg = loadShellConfig(need(values.config, '--config FILE'));
      const host = need(values.host, '--host H');
      const portText = need(values.port, '--port P');
      if (!/^\d+$/.test(portText)) throw new UsageError('--port must be a port number');
      const port = Number(portText);
      const jump = await pinJump(opt(values.jump), opt(values['jump-fingerprint']), out);
      const key = await ensureKeyFile(shellPaths(cfg.stateDir).agentKey, 'berth-shell');
      let fp = opt(values.fingerprint);
      if (!fp) {
        fp = await probeFingerprint(host, port, 10_000, jump && { jump, privateKey: key.private }).catch((err: unknown) => {
          const e = toBerthError(err);
          // Through a bastion the probe logs in to it: it must trust the shell's key already.
          throw jump ? new BerthError(e.code, `${e.message}; the bastion must trust the shell's key first (berth shell show-key), or give --fingerprint`, { cause: err }) : e;
        });
        out(`pinned the host key the agent presents now: ${fp}`);
        out('  check it against `berth agent fingerprint` on the agent host');
      }
      const entry = {
        id: need(values.id, '--id ID'),
        host,
        port,
        fingerprint: fp,
        ...(opt(values.address) ? { address: opt(values.address) } : {}),
        ...(jump ? { jump: opt(values.jump), jumpFingerprint: jump.fingerprint } : {}),
      };
      const r = await upsertAgent(shellPaths(cfg.stateDir).agents, entry);
      const through = jump ? ` through bastion ${opt(values.jump)}` : '';
      out(`${r === 'added' ? 'enrolled' : 'updated'} agent ${entry.id} at ${host}:${port}${through}; a running shell connects to it on reload (systemctl reload berth-shell, or SIGHUP)`);
      if (jump) {
        out("on the bastion, let this shell's key forward to the agent and nothing else (the bastion user's authorized_keys):");
        out(`  restrict,port-forwarding,permitopen="${host.includes(':') ? `[${host}]` : host}:${port}" ${key.public}`);
      }
      out('on the agent host, trust this shell with:');
      out(`  berth agent authorize-shell --config AGENT.json "${key.public}"`);
      return;
    }
    case 'remove-agent': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' }, id: { type: 'string' } });
      const cfg = loadShellConfig(need(values.config, '--config FILE'));
      await removeAgent(shellPaths(cfg.stateDir).agents, need(values.id, '--id ID'));
      out(`removed agent ${String(values.id)}; a running shell drops its connection on reload (systemctl reload berth-shell, or SIGHUP)`);
      return;
    }
    case 'agents': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const cfg = loadShellConfig(need(values.config, '--config FILE'));
      for (const a of await readAgents(shellPaths(cfg.stateDir).agents)) out(`${a.id} ${a.host}:${a.port} ${a.fingerprint}`);
      return;
    }
    case 'show-key': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const cfg = loadShellConfig(need(values.config, '--config FILE'));
      out((await ensureKeyFile(shellPaths(cfg.stateDir).agentKey, 'berth-shell')).public);
      return;
    }
    default:
      throw new UsageError(sub ? `unknown shell command: ${sub}` : 'missing shell command');
  }
}

async function imageCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'build') throw new UsageError(sub ? `unknown image command: ${sub}` : 'missing image command');
  const { values } = parse(rest, {
    tag: { type: 'string' },
    'if-missing': { type: 'boolean' },
    suite: { type: 'string' },
    mirror: { type: 'string' },
  });
  await buildImage({
    tag: opt(values.tag) ?? DEFAULT_IMAGE,
    suite: opt(values.suite) ?? 'bookworm',
    mirror: opt(values.mirror),
    ifMissing: values['if-missing'] === true,
    log: (l) => process.stdout.write(`${l}\n`),
  });
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'agent':
      return agentCommand(rest);
    case 'image':
      return imageCommand(rest);
    case 'shell':
      return shellCommand(rest);
    case 'demo': {
      const { values } = parse(rest, { dir: { type: 'string' }, port: { type: 'string' }, 'dns-port': { type: 'string' } });
      const portOf = (v: string | undefined, env: string | undefined, dflt: number, flag: string): number => {
        const text = v ?? (env || undefined) ?? String(dflt);
        if (!/^\d+$/.test(text) || Number(text) > 65535) throw new UsageError(`${flag} must be a port number`);
        return Number(text);
      };
      const demo = await runDemo({
        dir: opt(values.dir) ?? defaultDemoDir(),
        port: portOf(opt(values.port), process.env.BERTH_DEMO_PORT, 2200, '--port'),
        dnsPort: portOf(opt(values['dns-port']), process.env.BERTH_DEMO_DNS_PORT, 15353, '--dns-port'),
        operator: demoUser(),
        out: (l) => void process.stdout.write(`${l}\n`),
      });
      stopOnSignal(demo, (sig) => `berth demo stopping (${sig}); sessions stay as they are`);
      return;
    }
    case 'version':
    case '--version':
      process.stdout.write(versionText(BUILD, PROTOCOL_VERSION));
      return;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(cmd ? `unknown command: ${cmd}` : 'missing command');
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`berth: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const e = err instanceof BerthError ? err : toBerthError(err);
  process.stderr.write(errorLine(e.code, e.message));
  process.exit(1);
});
