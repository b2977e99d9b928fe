/**
 * The menu's undo of a delete: D then Y moves the session to its agent's trash and says so with
 * the key that undoes it; U restores the one this operator deleted last in this menu, once.
 */
import { ClusterView } from '../../shell/cluster/view';
import { Role } from '../../shell/config';
import { assertMay } from '../../shell/roles';
import { Key } from '../../shell/ui/dialog';
import { MenuContext, MenuService, UndoSlot } from '../../shell/ui/menu-actions';
import { dispatch } from '../../shell/ui/menu-keys';
import { SessionEntry, TrashEntry } from '../../common/protocol';

const ID = '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const entry: SessionEntry = {
  kind: 'session',
  agent: 'agent-1',
  meta: { version: 1, id: ID, name: 'web', protocol: 'tcp', port: 1001, dns: 'webdns', createdAt: '2026-01-01T00:00:00.000Z', lastAccessedAt: null, createdBy: 'alice' },
  state: 'R',
  attached: [],
  lock: null,
  container: null,
  restartNeeded: false,
};
const trashed: TrashEntry = { id: ID, name: 'web', protocol: 'tcp', port: 1001, dns: 'webdns', deletedAt: '2026-01-02T00:00:00.000Z', deletedBy: 'alice', purgeAt: '2026-01-03T00:00:00.000Z' };

/** A menu over a view with one session, whose service deletes to the trash and restores from it. */
function menu(role: Role = 'operator') {
  const view = new ClusterView();
  view.addAgent('agent-1');
  view.setStatus('agent-1', 'online', '');
  view.upsert('agent-1', entry, view.mark());
  const calls: unknown[][] = [];
  const said: Array<[string, boolean]> = [];
  const runs: Array<{ label: string; result: Promise<string> }> = [];
  let confirm: (() => void) | undefined;
  const service = {
    view,
    check: (o: { name: string; role: Role }, action: Parameters<MenuService['check']>[1]) => assertMay(o, action),
    refused: (_o: unknown, _a: unknown, _r: unknown, err: Error) => err,
    delete: async (_o: unknown, id: string) => {
      calls.push(['delete', id]);
      view.forget('agent-1', id);
      view.setTrashed('agent-1', id, trashed, view.mark());
      return id;
    },
    restore: async (_o: unknown, ref: string) => {
      calls.push(['restore', ref]);
      view.setTrashed('agent-1', ref, null, view.mark());
      view.upsert('agent-1', { ...entry, state: '-' }, view.mark());
      return { ...entry, state: '-' };
    },
  } as unknown as MenuService;
  const undo: UndoSlot = { last: null };
  const ctx: MenuContext = {
    operator: { name: 'alice', role },
    service,
    dialogs: { form: () => undefined, picker: () => undefined, confirm: (_q, yes) => (confirm = yes), page: () => undefined },
    pageRows: () => 10,
    move: () => undefined,
    startFilter: () => undefined,
    attach: () => undefined,
    say: (text, error = false) => said.push([text, error]),
    run: (label, fn) => runs.push({ label, result: fn() }),
    quit: () => undefined,
    undo,
  };
  return { ctx, calls, said, runs, view, yes: () => confirm?.() };
}

const press = (ch: string): [string, Key] => [ch, { name: ch.toLowerCase() }];

test('D, Y, then u restores the session just deleted, once', async () => {
  const m = menu();
  const s = m.view.sessions()[0];
  dispatch(m.ctx, ...press('D'), s);
  m.yes();
  expect(m.runs[0]?.label).toBe('deleting web');
  expect(await m.runs[0]?.result).toBe('deleted web — u to undo');
  expect(m.view.sessions()).toEqual([]);
  expect(m.view.trash().map((t) => t.id)).toEqual([ID]);

  dispatch(m.ctx, ...press('u'), undefined);
  expect(m.runs[1]?.label).toBe('restoring web');
  expect(await m.runs[1]?.result).toBe('restored web (stopped: R starts it)');
  expect(m.calls).toEqual([['delete', ID], ['restore', ID]]);
  expect(m.view.sessions().map((x) => x.id)).toEqual([ID]);
  expect(m.view.trash()).toEqual([]);

  // Nothing left to undo.
  dispatch(m.ctx, ...press('U'), undefined);
  expect(m.runs).toHaveLength(2);
  expect(m.said).toEqual([['nothing to undo: no session was deleted in this menu', true]]);
});

test('a viewer may not undo', () => {
  const m = menu('viewer');
  dispatch(m.ctx, ...press('u'), undefined);
  expect(m.runs).toEqual([]);
  expect(m.said).toEqual([['alice is a viewer and may not restore', true]]);
});
