import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { sleepWith, type Clock, systemClock } from '@ztwim/core';
import { SpiffeId } from '@ztwim/spiffe';
import { AgentHintsService } from '@ztwim/proto';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { handlerContext } from './handler-context.test-util.ts';
import { EntryChanges, hintsService } from './hints-service.ts';

// The system clock with referenced timers (systemClock unrefs its own: with nothing else pending,
// a test would end while the service waits out its debounce).
const clock: Clock = {
  ...systemClock,
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  sleep: (ms, signal) => sleepWith(clock, ms, signal),
};

const A = 'spiffe://example.org/spire/agent/join_token/a';
const B = 'spiffe://example.org/spire/agent/join_token/b';

function ctxFor(agent: string | undefined, signal: AbortSignal) {
  const caller = { local: false, admin: false, remoteAddress: '', ...(agent === undefined ? {} : { agentId: SpiffeId.parse(agent) }) };
  return handlerContext(AgentHintsService, AgentHintsService.method.watch, { caller, signal });
}

test("AgentHints/Watch: a hint when the caller's entries change, none for other agents' entries or no change", async () => {
  await withTempSqliteStore(async (ds) => {
    const changes = new EntryChanges();
    const svc = hintsService({ dataStore: ds, nodeSelectors: async () => [], changes, debounceMs: 0, clock });
    const ac = new AbortController();
    try {
      const it = svc.watch!({} as never, ctxFor(A, ac.signal))[Symbol.asyncIterator]();
      const next = it.next();
      let settled = false;
      void next.then(() => {
        settled = true;
      });
      const tick = async (): Promise<void> => {
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      };

      // Another agent's entry, then a notify without any change: no hint.
      await ds.createEntry({ spiffeId: 'spiffe://example.org/b/1', parentId: B, selectors: [{ type: 'unix', value: 'uid:1' }] });
      changes.notify();
      await tick();
      changes.notify();
      await tick();
      assert.equal(settled, false, "no hint for other agents' entries");

      // The caller's own entry: a hint with its entry count.
      const mine = await ds.createEntry({ spiffeId: 'spiffe://example.org/a/1', parentId: A, selectors: [{ type: 'unix', value: 'uid:1' }] });
      changes.notify();
      const first = await next;
      assert.equal(first.done, false);
      assert.equal(first.value?.entries, 1);

      // An update of the caller's entry: another hint.
      const second = it.next();
      await ds.updateEntry({ id: mine.id, dnsNames: ['a.example.org'] }, { dnsNames: true });
      changes.notify();
      assert.equal((await second).value?.entries, 1);

      // The call ends when its signal aborts.
      const third = it.next();
      ac.abort();
      assert.equal((await third).done, true);
    } finally {
      ac.abort();
    }
  });
});

test('AgentHints/Watch refuses callers that are not agents', async () => {
  await withTempSqliteStore(async (ds) => {
    const svc = hintsService({ dataStore: ds, nodeSelectors: async () => [], changes: new EntryChanges(), clock });
    const it = svc.watch!({} as never, ctxFor(undefined, new AbortController().signal))[Symbol.asyncIterator]();
    await assert.rejects(it.next(), (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied);
  });
});
