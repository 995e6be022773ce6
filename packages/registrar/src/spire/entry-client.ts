// The Entry API over the server's admin Unix socket (the same connect transport the `ztwim server`
// CLI uses, from @ztwim/proto), working unchanged against `ztwim server` and spire-server.
// Pages ListEntries and cuts writes into batches as SPIRE's controller manager does.
import { create } from '@bufbuild/protobuf';
import { createClient, type Client } from '@connectrpc/connect';
import { spiffeIdToWire, wireSpiffeIdString } from '@ztwim/core';
import { createUnixGrpcTransport, EntrySchema, EntryService, SelectorMatch_MatchBehavior, type Entry, type GrpcClientTransport } from '@ztwim/proto';
import type { BatchStatus, EntryClient, RegEntry } from './entry.ts';

export const LIST_PAGE_SIZE = 500;
export const WRITE_BATCH_SIZE = 50;

/** The fields RegEntry and the wire Entry share under one name and shape (the IDs differ: string vs SPIFFEID). */
function sameFields(e: RegEntry | Entry) {
  return {
    id: e.id,
    selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    federatesWith: [...e.federatesWith],
    admin: e.admin,
    downstream: e.downstream,
    dnsNames: [...e.dnsNames],
    hint: e.hint,
    storeSvid: e.storeSvid,
  };
}

export function entryToProto(e: RegEntry): Entry {
  return create(EntrySchema, { ...sameFields(e), spiffeId: spiffeIdToWire(e.spiffeId), parentId: spiffeIdToWire(e.parentId) });
}

export function entryFromProto(e: Entry): RegEntry {
  return { ...sameFields(e), spiffeId: wireSpiffeIdString(e.spiffeId), parentId: wireSpiffeIdString(e.parentId) };
}

async function inBatches<T>(items: readonly T[], size: number, call: (batch: T[]) => Promise<BatchStatus[]>): Promise<BatchStatus[]> {
  const out: BatchStatus[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await call(items.slice(i, i + size))));
  return out;
}

function statusOf(s: { code: number; message: string } | undefined): BatchStatus {
  return { code: s?.code ?? 2, message: s?.message ?? 'no status in result' };
}

/** An EntryClient on one connection to `socketPath`; close() ends it. */
export function dialEntryClient(socketPath: string): EntryClient & { close(): void } {
  const transport: GrpcClientTransport = createUnixGrpcTransport(socketPath);
  const api: Client<typeof EntryService> = createClient(EntryService, transport);
  const list = async (filter: Parameters<typeof api.listEntries>[0]['filter'], signal: AbortSignal | undefined): Promise<RegEntry[]> => {
    const out: RegEntry[] = [];
    let pageToken = '';
    do {
      const resp = await api.listEntries(
        { pageSize: LIST_PAGE_SIZE, pageToken, ...(filter === undefined ? {} : { filter }) },
        signal === undefined ? {} : { signal },
      );
      for (const e of resp.entries) out.push(entryFromProto(e));
      pageToken = resp.nextPageToken;
    } while (pageToken !== '');
    return out;
  };
  return {
    listEntries(signal) {
      return list(undefined, signal);
    },
    listEntriesOfPod(podUid, signal) {
      return list({ bySelectors: { selectors: [{ type: 'k8s', value: `pod-uid:${podUid}` }], match: SelectorMatch_MatchBehavior.MATCH_SUPERSET } }, signal);
    },
    createEntries(entries, signal) {
      return inBatches(entries, WRITE_BATCH_SIZE, async (batch) => {
        const resp = await api.batchCreateEntry({ entries: batch.map(entryToProto) }, signal === undefined ? {} : { signal });
        return resp.results.map((r) => statusOf(r.status));
      });
    },
    updateEntries(entries, signal) {
      return inBatches(entries, WRITE_BATCH_SIZE, async (batch) => {
        const resp = await api.batchUpdateEntry({ entries: batch.map(entryToProto) }, signal === undefined ? {} : { signal });
        return resp.results.map((r) => statusOf(r.status));
      });
    },
    deleteEntries(ids, signal) {
      return inBatches(ids, WRITE_BATCH_SIZE, async (batch) => {
        const resp = await api.batchDeleteEntry({ ids: batch }, signal === undefined ? {} : { signal });
        return resp.results.map((r) => statusOf(r.status));
      });
    },
    close() {
      transport.close();
    },
  };
}
