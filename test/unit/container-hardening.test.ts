/**
 * The pure parts of a session container's hardening: which networks keep containers apart, how
 * big /tmp is on a read-only root, and the config's defaults for both.
 */
import { agentConfigSchema, DEFAULT_SESSION_USER } from '../../agent/config';
import { tmpOptions } from '../../agent/docker/dockerode-runtime';
import { ICC_OPTION, isolationProblem } from '../../agent/docker/session-network';

describe('the sessions network', () => {
  test('only a bridge with inter-container traffic explicitly off keeps containers apart', () => {
    expect(isolationProblem({ Driver: 'bridge', Options: { [ICC_OPTION]: 'false' } })).toBeNull();
    // Docker's default for a new bridge is on: no option at all is refused too.
    expect(isolationProblem({ Driver: 'bridge', Options: {} })).toMatch(/inter-container traffic on/);
    expect(isolationProblem({ Driver: 'bridge', Options: undefined })).toMatch(/inter-container traffic on/);
    expect(isolationProblem({ Driver: 'bridge', Options: { [ICC_OPTION]: 'true' } })).toMatch(/inter-container traffic on/);
    expect(isolationProblem({ Driver: 'host', Options: { [ICC_OPTION]: 'false' } })).toMatch(/host network, not a bridge/);
    expect(isolationProblem({ Driver: 'macvlan', Options: {} })).toMatch(/not a bridge/);
  });
});

describe('/tmp on a read-only root', () => {
  test('runs programs, nothing setuid or a device, and holds half the memory limit', () => {
    expect(tmpOptions(4096)).toBe('rw,exec,nosuid,nodev,size=2048m');
    expect(tmpOptions(512)).toBe('rw,exec,nosuid,nodev,size=256m');
    expect(tmpOptions(64)).toBe('rw,exec,nosuid,nodev,size=32m');
    expect(tmpOptions(undefined)).toBe('rw,exec,nosuid,nodev,size=1024m');
  });
});

describe('agent config', () => {
  const base = { id: 'host-1' };

  test('hardened by default: the berth network, a read-only root; the user is left to the agent', () => {
    const cfg = agentConfigSchema.parse(base);
    expect(cfg.network).toBe('berth');
    expect(cfg.readOnlyRoot).toBe(true);
    expect(cfg.user).toBeUndefined();
  });

  test('the network name must be one Docker accepts; the read-only root can be turned off', () => {
    expect(agentConfigSchema.parse({ ...base, network: 'sessions_2.a-b', readOnlyRoot: false })).toMatchObject({
      network: 'sessions_2.a-b',
      readOnlyRoot: false,
    });
    for (const network of ['', '-lead', 'with space', 'a/b', 'x'.repeat(64)]) {
      expect(agentConfigSchema.safeParse({ ...base, network }).success).toBe(false);
    }
  });

  test('the default container user is no regular account and fits a 65536-id user namespace', () => {
    expect(DEFAULT_SESSION_USER.uid).toBeGreaterThan(60000);
    expect(DEFAULT_SESSION_USER.uid).toBeLessThan(65536);
    expect(DEFAULT_SESSION_USER.gid).toBe(DEFAULT_SESSION_USER.uid);
  });
});
