/**
 * Hosts of their own on one machine, for fault tests: each host is a network namespace with one
 * interface (`eth0`) on a bridge in a switch namespace, all made by the test, with addresses in a
 * /24 of 10.213.0.0/16 chosen per run; the test itself (the operators) sits on the same /24 through
 * one more pair whose end stays here. A process runs on a host under `ip netns exec` (`wrap`). Links
 * are cut with iptables rules in a host's namespace (netem is not available here): DROP, so a cut
 * connection goes silent as a real partition does, with no reset. `dispose` kills what still runs
 * in the namespaces and removes all of it, also after a failure.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ip = (...args: string[]) => run('ip', args);

export interface NetHost {
  name: string;
  /** The namespace's name. */
  ns: string;
  address: string;
  /** The command prefix that runs a program on this host. */
  wrap: string[];
}

export interface TestNet {
  /** This process's own address on the test network (where operators come from). */
  here: string;
  host(name: string): NetHost;
  /** Drops every packet between hosts `a` and `b`, both ways (rules in b's namespace). */
  partition(a: string, b: string): Promise<void>;
  /** Undoes `partition(a, b)`. */
  heal(a: string, b: string): Promise<void>;
  /** Kills every process left in the namespaces, then removes them and their links. Idempotent. */
  dispose(): Promise<void>;
}

/** A /24 no route of this machine uses yet. */
async function freeSubnet(): Promise<string> {
  const routes = (await ip('route', 'show')).stdout;
  for (let i = 0; i < 50; i++) {
    const third = 1 + Math.floor(Math.random() * 254);
    const net = `10.213.${third}`;
    if (!routes.includes(`${net}.`)) return net;
  }
  throw new Error('no free /24 in 10.213.0.0/16 after 50 tries');
}

export async function startNet(names: string[]): Promise<TestNet> {
  const tag = randomBytes(3).toString('hex');
  const net = await freeSubnet();
  const switchNs = `berth-${tag}-switch`;
  const hereLink = `b${tag}r`;
  const hosts = new Map<string, NetHost>();
  const namespaces: string[] = [];
  let disposed = false;

  const dispose = async (): Promise<void> => {
    if (disposed) return;
    disposed = true;
    for (const ns of namespaces) {
      const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    for (const ns of namespaces) await ip('netns', 'delete', ns).catch(() => undefined);
    // Its peer went with the switch namespace; this is for a run cut short before the move.
    await ip('link', 'delete', hereLink).catch(() => undefined);
  };

  try {
    await ip('netns', 'add', switchNs);
    namespaces.push(switchNs);
    await ip('-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', switchNs, 'link', 'set', 'br0', 'up');
    // The end that stays here: this process's address on the test network.
    const here = `${net}.1`;
    await ip('link', 'add', hereLink, 'type', 'veth', 'peer', 'name', `b${tag}s0`);
    await ip('link', 'set', `b${tag}s0`, 'netns', switchNs);
    await ip('-n', switchNs, 'link', 'set', `b${tag}s0`, 'master', 'br0', 'up');
    await ip('addr', 'add', `${here}/24`, 'dev', hereLink);
    await ip('link', 'set', hereLink, 'up');
    for (const [i, name] of names.entries()) {
      const ns = `berth-${tag}-${name}`;
      const inner = `b${tag}h${i}`;
      const outer = `b${tag}s${i + 1}`;
      await ip('netns', 'add', ns);
      namespaces.push(ns);
      await ip('link', 'add', inner, 'type', 'veth', 'peer', 'name', outer);
      await ip('link', 'set', outer, 'netns', switchNs);
      await ip('-n', switchNs, 'link', 'set', outer, 'master', 'br0', 'up');
      await ip('link', 'set', inner, 'netns', ns);
      await ip('-n', ns, 'link', 'set', inner, 'name', 'eth0');
      const address = `${net}.${10 + i}`;
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      hosts.set(name, { name, ns, address, wrap: ['ip', 'netns', 'exec', ns] });
    }
    const host = (name: string): NetHost => {
      const h = hosts.get(name);
      if (!h) throw new Error(`no host ${name} on this test network`);
      return h;
    };
    const rules = (a: string): string[][] => [
      ['INPUT', '-s', host(a).address, '-j', 'DROP'],
      ['OUTPUT', '-d', host(a).address, '-j', 'DROP'],
    ];
    const iptables = (ns: string, args: string[]) => run('ip', ['netns', 'exec', ns, 'iptables', ...args]);
    return {
      here,
      host,
      async partition(a, b) {
        for (const r of rules(a)) await iptables(host(b).ns, ['-A', ...r]);
      },
      async heal(a, b) {
        for (const r of rules(a)) await iptables(host(b).ns, ['-D', ...r]);
      },
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}
