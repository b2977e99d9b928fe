/**
 * The shell's side of its agents: the enrolled-agents file (pinned host keys), one SSH link per
 * agent (RPC, events, attaches), the pool the shell's operations call through, and the host-key
 * probe used at enrolment. The only place in the shell that speaks to agents.
 */
export { agentEntrySchema, readAgents, removeAgent, upsertAgent, writeAgentsFile, type AgentEntry } from './enrolled';
export { AgentLink, type AgentAttach, type LinkStatus } from './link';
export { AgentPool, type Agents } from './pool';
export { probeFingerprint } from './probe';
