/**
 * Pure: `list --agent A --state S --activity X --name GLOB`, each a list of allowed values
 * (comma-separated, or the flag again); a session is listed when it matches every flag given.
 * States are the words `list --json` prints (stopped, running, connected, locked, unknown);
 * activities are those of the activity model, and `none` for a session with no report yet.
 */
import { ACTIVITIES } from '../../common/protocol';
import type { ClusterSession } from '../cluster/view';
import { FlagSpec, Parsed, UsageError, listFlag } from './args';
import { stateWord } from './format';

const STATES = ['stopped', 'running', 'connected', 'locked', 'unknown'];
const ACTIVITY_WORDS = [...ACTIVITIES, 'none'];

export interface ListFilter {
  agents: string[];
  states: string[];
  activities: string[];
  names: RegExp[];
}

/** Values of a list flag, split at commas; each checked against `allowed` when given. */
function values(words: string[], flag: string, allowed?: readonly string[]): string[] {
  const out = words.flatMap((w) => w.split(',')).filter((v) => v !== '');
  const bad = allowed ? out.filter((v) => !allowed.includes(v)) : [];
  if (bad.length > 0) throw new UsageError(`--${flag} must be one of ${allowed?.join(', ')} (got ${bad.join(', ')})`);
  return out;
}

/** A shell-style name pattern (`*` any run, `?` one character, nothing else special) as a RegExp. */
export function globRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

/** The flags of list and watch that choose sessions. */
export const LIST_FILTER_FLAGS: FlagSpec = { agent: 'list', state: 'list', activity: 'list', name: 'list' };

/** The filter those flags ask for. Throws UsageError naming a bad value. */
export function listFilterOf(flags: Parsed['flags']): ListFilter {
  return listFilter({ agent: listFlag(flags.agent), state: listFlag(flags.state), activity: listFlag(flags.activity), name: listFlag(flags.name) });
}

export function listFilter(f: { agent: string[]; state: string[]; activity: string[]; name: string[] }): ListFilter {
  return {
    agents: values(f.agent, 'agent'),
    states: values(f.state, 'state', STATES),
    activities: values(f.activity, 'activity', ACTIVITY_WORDS),
    names: f.name.map(globRegExp),
  };
}

export function matchesList(s: ClusterSession, f: ListFilter): boolean {
  const activity = s.entry.kind === 'session' && s.entry.activity ? s.entry.activity.state : 'none';
  const name = s.entry.kind === 'session' ? s.entry.meta.name : '';
  return (
    (f.agents.length === 0 || f.agents.includes(s.agent)) &&
    (f.states.length === 0 || f.states.includes(stateWord(s.state))) &&
    (f.activities.length === 0 || f.activities.includes(activity)) &&
    (f.names.length === 0 || f.names.some((re) => re.test(name)))
  );
}
