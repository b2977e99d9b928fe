/**
 * Port rules: 0 = none, -1 = lowest free port from 1001, else that exact port; unique per protocol
 * on one agent (tcp:53 and udp:53 coexist), and the host must really be able to bind it.
 */
import { BerthError } from '../../common/errors';
import { AUTO_PORT_MIN, PORT_MAX, Protocol } from '../../common/names';

/** Answers whether the host can bind a port now. Returns null when it can, else the reason. */
export interface PortProbe {
  check(port: number, protocol: Protocol): Promise<string | null>;
}

/** Which sessions hold which ports: `${protocol}/${port}` → session name. */
export type PortTable = Map<string, string>;

export function portKey(port: number, protocol: Protocol): string {
  return `${protocol}/${port}`;
}

/**
 * Resolves a requested port against the ports in use and the probe. Returns the port to reserve.
 * Throws PORT_UNAVAILABLE naming the port and why. Not idempotent on its own: call it under the
 * agent's registry lock and record the result before releasing it.
 */
export async function resolvePort(
  requested: number,
  protocol: Protocol,
  used: PortTable,
  probe: PortProbe,
): Promise<number> {
  if (requested === 0) return 0;
  if (requested > 0) {
    const holder = used.get(portKey(requested, protocol));
    if (holder !== undefined) {
      throw new BerthError('PORT_UNAVAILABLE', `port ${requested}/${protocol} is taken by session ${holder}`);
    }
    const why = await probe.check(requested, protocol);
    if (why) throw new BerthError('PORT_UNAVAILABLE', `port ${requested}/${protocol} cannot be bound: ${why}`);
    return requested;
  }
  for (let port = AUTO_PORT_MIN; port <= PORT_MAX; port++) {
    if (used.has(portKey(port, protocol))) continue;
    if ((await probe.check(port, protocol)) === null) return port;
  }
  throw new BerthError('PORT_UNAVAILABLE', `no free ${protocol} port from ${AUTO_PORT_MIN} to ${PORT_MAX}`);
}
