// Workload API §5.2.1 end to end: the SDK's sources on a real ztwim agent (server and agent in
// process, SQLite, the agent's Unix socket). Deleting the workload's only entry makes the agent
// answer the X509-SVID stream with PermissionDenied "no identity issued": X509Source reports it
// through onError and stops handing out the SVID and bundles; JwtSource gets no JWT-SVID. A new
// entry for the workload brings the identity back and the source serves it again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { JwtSource, TrustDomain, WorkloadApiClient, WorkloadApiError, X509Source, isSpiffeError, linearBackoff } from '@ztwim/spiffe';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

const uid = process.getuid?.() ?? 0;
const TD = TrustDomain.parse('example.org');
let stack: Stack;

before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.close();
});

/** Resolves with the first error `pred` accepts, past or future. */
function errorLog(): { onError(e: WorkloadApiError): void; next(pred: (e: WorkloadApiError) => boolean, what: string): Promise<WorkloadApiError> } {
  const seen: WorkloadApiError[] = [];
  const waiters: Array<{ pred: (e: WorkloadApiError) => boolean; resolve: (e: WorkloadApiError) => void }> = [];
  return {
    onError(e) {
      seen.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
    next(pred, what) {
      const hit = seen.find(pred);
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; errors seen: ${seen.map((e) => e.message).join(' | ')}`)), 20_000);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
  };
}

const withdrawn = (e: unknown): boolean =>
  e instanceof WorkloadApiError &&
  isSpiffeError(e, 'ERR_WORKLOAD_API') &&
  e.grpcCode === Code.PermissionDenied &&
  /^x509source: identity withdrawn by the Workload API: no identity issued$/.test(e.message);

test(
  'Workload API §5.2.1: entry deleted on a ztwim agent, the SDK sources stop serving the identity until it is issued again',
  { timeout: 90_000 },
  async () => {
    const { agent } = await stack.startAgent({ syncInterval: '500ms' });
    const spec = { parentId: agent.agentId, path: '/sdk-withdrawn', selectors: [`unix:uid:${uid}`] };
    const [entryId] = await stack.createEntries([spec]);
    const client = new WorkloadApiClient({ address: `unix://${agent.socketPath}`, backoff: () => linearBackoff(100, 500) });
    const xlog = errorLog();
    // create() waits (through PermissionDenied answers, retried) until the agent serves the entry.
    const x = await X509Source.create({ client, onError: xlog.onError });
    const j = await JwtSource.create({ client });
    try {
      assert.equal(x.getX509Svid().id.toString(), 'spiffe://example.org/sdk-withdrawn');
      assert.equal(x.getX509BundleForTrustDomain(TD).authorities().length > 0, true);
      assert.equal((await j.fetchJwtSvid({ audience: 'sdk-test' })).id.toString(), 'spiffe://example.org/sdk-withdrawn');

      const updates: string[] = [];
      x.onUpdate((ctx) => updates.push(ctx.svids.map((s) => s.id.toString()).join(',')));
      const del = await stack.entry.batchDeleteEntry({ ids: [entryId ?? ''] });
      assert.equal(del.results[0]?.status?.code, 0, del.results[0]?.status?.message);

      // The agent ends the X509-SVID stream with PermissionDenied; the source says so...
      const denied = await xlog.next((e) => e.grpcCode === Code.PermissionDenied, 'PermissionDenied from the agent');
      assert.equal(denied.grpcMessage, 'no identity issued');
      // ...and hands out neither the SVID nor the bundles any more.
      assert.throws(() => x.getX509Svid(), withdrawn);
      assert.throws(() => x.getX509Svids(), withdrawn);
      assert.throws(() => x.getX509BundleForTrustDomain(TD), withdrawn);
      assert.throws(() => x.allAuthorities(), withdrawn);
      await assert.rejects(j.fetchJwtSvid({ audience: 'sdk-test' }), (e: unknown) => e instanceof WorkloadApiError && e.grpcCode === Code.PermissionDenied);
      assert.deepEqual(updates, [], 'no update was adopted after the entry was deleted');

      // A new entry for the workload: the retried watch brings the identity back.
      const back = new Promise<void>((resolve) => {
        const off = x.onUpdate(() => {
          off();
          resolve();
        });
      });
      await stack.createEntries([{ ...spec, path: '/sdk-again' }]);
      await back;
      assert.equal(x.getX509Svid().id.toString(), 'spiffe://example.org/sdk-again');
      assert.equal(x.getX509BundleForTrustDomain(TD).authorities().length > 0, true);
      assert.equal((await j.fetchJwtSvid({ audience: 'sdk-test' })).id.toString(), 'spiffe://example.org/sdk-again');
    } finally {
      await Promise.all([x.close(), j.close()]);
      client.close();
    }
  },
);
