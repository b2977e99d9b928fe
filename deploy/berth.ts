#!/usr/bin/env node
/**
 * The `berth` program: one binary, subcommands for each part. Usage errors exit 2, refused or
 * failed commands exit 1 with `error: CODE: message` on stderr.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BerthError, toBerthError } from '../common/errors';
import { BERTH_VERSION, PROTOCOL_VERSION } from '../common/protocol';
import { hostKeyPath, loadAgentConfig, trustedKeysPath } from '../agent/config';
import { startAgent } from '../agent/main';
import { authorizeKey, ensureHostKey, publicKeyOf } from '../agent/rpc/keys';
import { DEFAULT_IMAGE, buildImage } from './image/build';

const USAGE = `usage: berth <command>

  agent serve --config FILE              run the agent of this host
  agent authorize-shell --config FILE (KEY | --key-file FILE)
                                         trust a shell's public key
  agent fingerprint --config FILE        print this agent's host key fingerprint
  image build [--tag T] [--if-missing] [--suite S] [--mirror URL]
                                         build the session image offline (debootstrap)
  version                                print the version
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
      const stop = (sig: string) => {
        process.stdout.write(`berth agent ${cfg.id} stopping (${sig}); containers keep running\n`);
        agent.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
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
    case 'version':
    case '--version':
      process.stdout.write(`berth ${BERTH_VERSION} (protocol ${PROTOCOL_VERSION})\n`);
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
  process.stderr.write(`error: ${e.code}: ${e.message}\n`);
  process.exit(1);
});
