/**
 * The sessions' network: a bridge with inter-container traffic off, so a session reaches the
 * outside and published ports but never another session's container. Every agent on an engine
 * joins its containers to it; the first to need it creates it.
 *
 * Docker 20.10 does not serialise network creation: agents creating the same name at once each
 * get a network of their own, even with CheckDuplicate. So each agent, after creating, looks
 * again, keeps the oldest network of that name, removes berth's unused duplicates, and refers to
 * the network by id (a name shared by two networks is refused by Docker as ambiguous).
 */
import Docker from 'dockerode';
import { BerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { dockerError } from './errors';
import { LABEL_NETWORK } from './runtime';

/** The bridge driver's option that lets containers on one network talk to each other. */
export const ICC_OPTION = 'com.docker.network.bridge.enable_icc';

type NetworkRow = Pick<Docker.NetworkInspectInfo, 'Id' | 'Name' | 'Created' | 'Driver' | 'Options' | 'Labels'>;

export class SessionNetworks {
  /** Network name → its id, once checked. A failed check is not kept. */
  private readonly ids = new Map<string, Promise<string>>();

  constructor(
    private readonly docker: Docker,
    private readonly labels: Record<string, string>,
    private readonly log: Logger,
  ) {}

  /** The id of the sessions' network `name`, created if missing; checked once, then remembered. */
  ensure(name: string): Promise<string> {
    let id = this.ids.get(name);
    if (!id) {
      const pending = this.resolve(name);
      this.ids.set(name, pending);
      pending.catch(() => {
        if (this.ids.get(name) === pending) this.ids.delete(name);
      });
      id = pending;
    }
    return id;
  }

  /** Forgets what `ensure` found (the network was removed behind the agent's back). */
  forget(name: string): void {
    this.ids.delete(name);
  }

  private async resolve(name: string): Promise<string> {
    let found = await this.named(name);
    if (found.length === 0) {
      await this.create(name);
      found = await this.named(name);
    }
    const kept = oldest(found);
    if (!kept) throw new BerthError('INTERNAL', `network ${name}: gone right after it was created`);
    const refusal = isolationProblem(kept);
    if (refusal) {
      throw new BerthError(
        'CONFLICT',
        `network ${name} ${refusal}, so sessions could reach each other: remove it ` +
          `(docker network rm ${name}) or name another network in the agent config ("network")`,
      );
    }
    for (const dup of found) {
      if (dup.Id !== kept.Id && dup.Labels?.[LABEL_NETWORK] !== undefined) await this.removeDuplicate(dup);
    }
    return kept.Id;
  }

  /** Networks whose name is exactly `name` (Docker's name filter also matches parts of names). */
  private async named(name: string): Promise<NetworkRow[]> {
    try {
      const rows = (await this.docker.listNetworks({ filters: { name: [name] } })) as NetworkRow[];
      return rows.filter((n) => n.Name === name);
    } catch (err) {
      throw dockerError('list networks', err);
    }
  }

  private async create(name: string): Promise<void> {
    try {
      await this.docker.createNetwork({
        Name: name,
        CheckDuplicate: true,
        Driver: 'bridge',
        Options: { [ICC_OPTION]: 'false' },
        Labels: { ...this.labels, [LABEL_NETWORK]: 'sessions' },
      });
      this.log.info('created network', { network: name });
    } catch (err) {
      // 409: another agent made it first; what it made is checked like any existing network.
      if ((err as { statusCode?: number }).statusCode !== 409) throw dockerError('create network', err);
    }
  }

  /** A racing agent's twin: removed when nothing uses it yet; left alone (still isolated) if something does. */
  private async removeDuplicate(dup: NetworkRow): Promise<void> {
    try {
      await this.docker.getNetwork(dup.Id).remove();
      this.log.info('removed duplicate network', { network: dup.Name, id: dup.Id.slice(0, 12) });
    } catch (err) {
      this.log.debug('duplicate network kept', { network: dup.Name, id: dup.Id.slice(0, 12), err: dockerError('remove network', err).message });
    }
  }
}

/** Why a network would let containers reach each other, or null if it keeps them apart. */
export function isolationProblem(n: Pick<NetworkRow, 'Driver' | 'Options'>): string | null {
  if (n.Driver !== 'bridge') return `is a ${n.Driver} network, not a bridge`;
  if (n.Options?.[ICC_OPTION] !== 'false') return `has inter-container traffic on (${ICC_OPTION} is not "false")`;
  return null;
}

/** The network every agent keeps: the oldest, ties broken by id. */
function oldest(rows: NetworkRow[]): NetworkRow | undefined {
  const at = (n: NetworkRow): number => Date.parse(n.Created) || 0;
  return [...rows].sort((a, b) => at(a) - at(b) || (a.Id < b.Id ? -1 : 1))[0];
}
