import { BerthError } from '../../common/errors';
import { channelOpenError } from '../../shell/agents/link';

describe('a failed channel open to an agent', () => {
  it('is AGENT_OFFLINE when the link saw the agent go, whatever the library said', () => {
    expect(channelOpenError(new Error('No response from server'), 'agent-1', 'agent agent-1 went offline: connection closed')).toMatchObject({
      code: 'AGENT_OFFLINE',
      message: 'agent agent-1 went offline: connection closed',
    });
  });

  it('is AGENT_OFFLINE when the socket ended before the link heard of it ("Not connected"), so a move’s outcome is resolved later', () => {
    const e = channelOpenError(new Error('Not connected'), 'agent-1', null);
    expect(e).toBeInstanceOf(BerthError);
    expect(e).toMatchObject({ code: 'AGENT_OFFLINE', message: 'agent agent-1 went offline: connection closed' });
  });

  it('is any other failure as it is, on a link that stands', () => {
    const other = new Error('Unable to start subsystem: berth-move');
    expect(channelOpenError(other, 'agent-1', null)).toBe(other);
  });
});
