/**
 * What a test looks for in text bound for a terminal: the characters a terminal would act on (C0
 * controls, DEL, C1 controls) or that make text read as something else (bidi controls, invisible
 * format characters, line separators, tag characters). Written out as ranges, apart from the code
 * under test.
 */
import { ClusterView } from '../../shell/cluster/view';

const RANGES: Array<[number, number]> = [
  [0x00, 0x1f],
  [0x7f, 0x9f],
  [0xad, 0xad],
  [0x61c, 0x61c],
  [0x180e, 0x180e],
  [0x200b, 0x200b],
  [0x200e, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x206f],
  [0xfeff, 0xfeff],
  [0xfff9, 0xfffb],
  [0xe0000, 0xe007f],
];

/** Each such character of `text` as U+XXXX, in order; a newline is allowed where `lines`. */
export function rawChars(text: string, o: { lines?: boolean } = {}): string[] {
  const found: string[] = [];
  for (const c of text) {
    const n = c.codePointAt(0) ?? 0;
    if (o.lines && c === '\n') continue;
    if (RANGES.some(([lo, hi]) => n >= lo && n <= hi)) found.push(`U+${n.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  return found;
}

/** A view with one agent online whose hello carries `version` and `hostname` as given (hostile text). */
export function viewWithAgent(version: string, hostname: string): ClusterView {
  const view = new ClusterView();
  view.addAgent('agent-1');
  view.setStatus('agent-1', 'online', '');
  view.apply('agent-1', {
    type: 'hello',
    agent: 'agent-1',
    protocol: 1,
    version,
    hostname,
    publishAddress: '127.0.0.1',
    capacity: { cpus: 1, memoryMb: 1024, maxSessions: null },
  });
  return view;
}
