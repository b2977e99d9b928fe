/**
 * The menu's preview: how high it is and when it hides, what its lines say (headline, the screen's
 * last lines made inert, why there are none), the feed that keeps it fresh (one capture at a time,
 * never a stale session's, refreshed on changes and on a timer, nothing while hidden), and the
 * agent's captures shared between menus.
 */
import { BerthError } from '../../common/errors';
import { SharedCaptures } from '../../agent/activity/shared-captures';
import type { ClusterSession } from '../../shell/cluster/view';
import { INITIAL_PREVIEW, PreviewShot, cyclePreviewSize, previewLines, previewRows, togglePreview } from '../../shell/ui/menu-preview';
import { INITIAL_STATE, pageStep, tableHeight } from '../../shell/ui/menu-state';
import { plain } from '../../shell/ui/menu-view';
import { PreviewFeed, PreviewWant } from '../../shell/ui/preview-feed';
import { viewEntry } from '../helpers/entries';
import { sleep, until } from '../helpers/wait';

const session = (state: ClusterSession['state'], id = 's1'): ClusterSession => {
  const entry = { ...viewEntry({ id, name: 'web', state: state === '?' ? 'R' : state }), activity: { state: 'working' as const, since: '2026-12-02T10:00:00.000Z', detail: 'Bash' } };
  return { entry, id, agent: 'agent-1', agentStatus: state === '?' ? 'offline' : 'online', state };
};
const shot = (text: string, id = 's1', error: string | null = null): PreviewShot => ({ id, text, at: '2026-12-02T10:00:01.000Z', error });

describe('the preview pane', () => {
  test('a third of the screen by default; L cycles a half and two thirds; P hides it; a low screen has none', () => {
    expect(INITIAL_STATE.preview).toEqual(INITIAL_PREVIEW);
    expect(previewRows(30, INITIAL_PREVIEW)).toBe(10);
    const half = cyclePreviewSize(INITIAL_PREVIEW);
    expect(previewRows(30, half)).toBe(15);
    expect(previewRows(30, cyclePreviewSize(half))).toBe(20);
    expect(cyclePreviewSize(cyclePreviewSize(half))).toEqual(INITIAL_PREVIEW);
    const hidden = togglePreview(INITIAL_PREVIEW);
    expect(previewRows(30, hidden)).toBe(0);
    // L on a hidden preview shows it, at the height it had.
    expect(cyclePreviewSize(hidden)).toEqual(INITIAL_PREVIEW);
    expect(previewRows(13, INITIAL_PREVIEW)).toBe(0);
    expect(previewRows(14, INITIAL_PREVIEW)).toBe(4);
    // The table gives up the rows: 30 - 4 chrome - 10.
    expect(tableHeight(30, INITIAL_PREVIEW)).toBe(16);
    expect(pageStep(30, INITIAL_PREVIEW)).toBe(15);
    expect(tableHeight(30, hidden)).toBe(26);
  });

  test('its lines: the headline, then the last lines that fit, inert; else why there are none', () => {
    const s = session('R');
    const text = ['one', 'two', 'evil \x1b]52;c;aGk=\x07 {bold}x{/bold}', 'four', '', ''].join('\n');
    const lines = previewLines(s, shot(text), 4).map(plain);
    expect(lines[0]).toBe(' web on agent-1 · working: Bash');
    // Blank lines below the cursor are dropped; the three last lines that are left fit.
    expect(lines.slice(1)).toEqual(['two', 'evil \\x1b]52;c;aGk=\\x07 {bold}x{/bold}', 'four']);
    expect([...lines.join('')].some((c) => c < ' ')).toBe(false);
    // A shot of another session (the selection moved on) is never shown.
    expect(previewLines(s, shot('other', 's2'), 4).map(plain)[1]).toBe(' …');
    expect(previewLines(s, null, 4).map(plain)[1]).toBe(' …');
    expect(previewLines(s, shot('', 's1', 'CONFLICT: session is not running'), 4)[1]).toEqual([{ text: ' CONFLICT: session is not running', tone: 'error' }]);
    expect(previewLines(session('-'), shot('old'), 4).map(plain)[1]).toBe(' stopped: Enter starts it and attaches');
    expect(previewLines(session('?'), shot('old'), 4).map(plain)[1]).toBe(' its agent is away');
    expect(previewLines(undefined, null, 4).map(plain)).toEqual([' no session selected']);
    expect(previewLines(s, shot('x'), 0)).toEqual([]);
  });
});

describe('the preview feed', () => {
  /** A fetch the test answers by hand. */
  function fakeFetch(): { calls: Array<{ id: string; lines: number; answer(text: string): void; fail(e: Error): void }>; fetch: (id: string, lines: number) => Promise<{ text: string; at: string }> } {
    const calls: ReturnType<typeof fakeFetch>['calls'] = [];
    return {
      calls,
      fetch: (id, lines) =>
        new Promise((resolve, reject) => {
          calls.push({ id, lines, answer: (text) => resolve({ text, at: new Date().toISOString() }), fail: reject });
        }),
    };
  }
  const want = (id: string, o: Partial<PreviewWant> = {}): PreviewWant => ({ id, lines: 9, live: true, version: 'v1', ...o });
  let feed: PreviewFeed | null = null;
  afterEach(() => feed?.stop());

  test('one capture at a time; a selection that moved on gets its own next, and the old one is never shown', async () => {
    const f = fakeFetch();
    let changes = 0;
    feed = new PreviewFeed({ fetch: f.fetch, changed: () => changes++, refreshMs: 60_000 });
    feed.show(want('a'));
    feed.show(want('a')); // the same want: nothing new
    expect(f.calls.map((c) => c.id)).toEqual(['a']);
    feed.show(want('b'));
    feed.show(want('c'));
    expect(f.calls.map((c) => c.id)).toEqual(['a']);
    f.calls[0]?.answer('screen of a');
    await until('the next capture', async () => f.calls.length, (n) => n === 2, 1000, 5);
    expect(f.calls[1]?.id).toBe('c');
    expect(feed.current()).toBeNull();
    f.calls[1]?.answer('screen of c');
    await until('c shown', async () => feed?.current()?.text, (t) => t === 'screen of c', 1000, 5);
    expect(changes).toBe(2);
  });

  test('a new entry version captures again; errors are shown as a shot; hidden or stopped sessions fetch nothing', async () => {
    const f = fakeFetch();
    feed = new PreviewFeed({ fetch: f.fetch, changed: () => undefined, refreshMs: 60_000 });
    feed.show(want('a'));
    f.calls[0]?.answer('x');
    await until('shown', async () => feed?.current()?.text, (t) => t === 'x', 1000, 5);
    feed.show(want('a', { version: 'v2' }));
    expect(f.calls).toHaveLength(2);
    f.calls[1]?.fail(new BerthError('CONFLICT', 'session is not running'));
    await until('the error', async () => feed?.current()?.error, (e) => e === 'CONFLICT: session is not running', 1000, 5);
    feed.show(want('a', { live: false, version: 'v3' }));
    feed.show(null);
    await sleep(20);
    expect(f.calls).toHaveLength(2);
    expect(feed.current()).toBeNull();
  });

  test('refreshes a selected running session on its timer, and stops when hidden', async () => {
    let n = 0;
    feed = new PreviewFeed({ fetch: () => Promise.resolve({ text: `frame ${++n}`, at: '' }), changed: () => undefined, refreshMs: 30 });
    feed.show(want('a'));
    await until('a few refreshes', async () => n, (x) => x >= 3, 2000, 5);
    feed.show(null);
    const stoppedAt = n;
    await sleep(120);
    expect(n).toBe(stoppedAt);
  });
});

describe("the agent's shared captures", () => {
  test('callers within the window share one capture (fewer lines are cut from it); a failure or the window ending takes a new one', async () => {
    const captures = new SharedCaptures(80);
    let taken = 0;
    const take = (lines: number): Promise<{ text: string; at: string }> => {
      taken++;
      return Promise.resolve({ text: Array.from({ length: lines }, (_, i) => `line ${i + 1}`).join('\n'), at: `t${taken}` });
    };
    const [a, b] = await Promise.all([captures.get('c1', 5, take), captures.get('c1', 2, take)]);
    expect(taken).toBe(1);
    expect(a.text.split('\n')).toHaveLength(5);
    expect(b).toEqual({ text: 'line 4\nline 5', at: 't1' });
    // More lines than the shared capture has: a new one.
    await captures.get('c1', 8, take);
    expect(taken).toBe(2);
    // Another container: its own.
    await captures.get('c2', 2, take);
    expect(taken).toBe(3);
    await sleep(120);
    await captures.get('c1', 2, take);
    expect(taken).toBe(4);
    const failing = new SharedCaptures(10_000);
    await expect(failing.get('c1', 2, () => Promise.reject(new Error('no tmux')))).rejects.toThrow('no tmux');
    await sleep(5);
    await failing.get('c1', 2, take);
    expect(taken).toBe(5);
  });
});
