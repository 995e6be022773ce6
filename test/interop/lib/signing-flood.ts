// SPIRE's signing rate limit seen from two agents on one server (ztwim's or SPIRE's, behind the
// AdminServer shape): agent A, on 127.0.0.1, floods BatchNewX509SVID (400 CSRs a call, one token
// each, so 8 calls in flight outrun the 500/s refill on any machine however loaded: the 6th to
// 8th in the queue are due 3.8-5.4 s later) with 3 s deadlines, long enough for the first call
// to be answered on a loaded machine; agent B, on 127.0.0.2 (Linux routes all of 127/8 to lo), keeps asking for its
// X509-SVID during the flood.
// Run on ztwim by test/integration/server-ratelimit.test.ts and on SPIRE v1.13.0 by
// test/interop/server-ratelimit-vs-spire.test.ts, so both answer the same flood.
import assert from 'node:assert/strict';
import type { SecureClientSessionOptions } from 'node:http2';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { EntryService, SvidService, BundleService, createTcpGrpcTransport, createUnixGrpcTransport, type GrpcClientTransport } from '@ztwim/proto';
import type { AgentCredentials } from '../../../packages/agent/src/client/server-client.ts';
import { attestWithJoinToken, csrFor, tlsOptions } from './authz-matrix.ts';
import type { AdminServer } from './spire-admin.ts';
import { eventually } from '@ztwim/testkit';

export interface FloodResult {
  /** Flooding agent's batch calls: answered, refused by code, the refusal messages seen. */
  readonly flood: { readonly ok: number; readonly byCode: Readonly<Record<string, number>>; readonly messages: readonly string[] };
  /** The other agent's X509-SVID requests during the flood: all must be served. */
  readonly other: { readonly ok: number; readonly failed: readonly string[] };
  /** A BatchNewX509SVID with 501 CSRs from the flooding agent: the code and message. */
  readonly overBurst: { readonly code: string; readonly message: string };
}

export interface FloodOptions {
  /** BatchNewX509SVID calls the flooding agent makes, each with `csrsPerCall` CSRs (one token each). */
  readonly calls?: number;
  /** Calls in flight at once. */
  readonly concurrency?: number;
  readonly csrsPerCall?: number;
  /** Deadline of each flooding call, ms. */
  readonly timeoutMs?: number;
}

async function agentOn(
  srv: AdminServer,
  admin: GrpcClientTransport,
  roots: Uint8Array[],
  localAddress: string,
): Promise<{ creds: AgentCredentials; transport: GrpcClientTransport; entryId: string; spiffeId: string }> {
  const creds = await attestWithJoinToken(srv, admin, roots);
  const path = `/flood-workload-${localAddress}`;
  const r = await createClient(EntryService, admin).batchCreateEntry({
    entries: [
      {
        spiffeId: { trustDomain: srv.trustDomain, path },
        parentId: { trustDomain: srv.trustDomain, path: creds.svid.id.path },
        selectors: [{ type: 'unix', value: 'uid:0' }],
      },
    ],
  });
  const entryId = r.results[0]?.entry?.id;
  if (entryId === undefined) throw new Error(`create entry: ${r.results[0]?.status?.message ?? 'no result'}`);
  // tls.connect passes net.connect's options (localAddress) through; Node's types omit it.
  const transport = createTcpGrpcTransport({
    host: '127.0.0.1',
    port: srv.port,
    tls: { ...tlsOptions(srv.trustDomain, roots, creds), localAddress } as SecureClientSessionOptions,
    defaultTimeoutMs: 10_000,
  });
  return { creds, transport, entryId, spiffeId: `spiffe://${srv.trustDomain}${path}` };
}

const codeName = (e: unknown): string => (e instanceof ConnectError ? Code[e.code] : `non-gRPC: ${String(e)}`);

/** One X509-SVID for the agent's entry; the status of its one result, or the call's error. */
async function newX509(svid: Client<typeof SvidService>, entryId: string, csr: Uint8Array): Promise<string> {
  try {
    const r = await svid.batchNewX509SVID({ params: [{ entryId, csr }] }, { timeoutMs: 10_000 });
    const st = r.results[0]?.status;
    return st?.code === 0 && (r.results[0]?.svid?.certChain.length ?? 0) > 0 ? 'OK' : `result ${st?.code ?? '?'}: ${st?.message ?? 'no result'}`;
  } catch (e) {
    return `${codeName(e)}: ${(e as Error).message}`;
  }
}

export async function signingFlood(srv: AdminServer, o: FloodOptions = {}): Promise<FloodResult> {
  const calls = o.calls ?? 16;
  const concurrency = o.concurrency ?? 8;
  const perCall = o.csrsPerCall ?? 400;
  const timeoutMs = o.timeoutMs ?? 3000;
  const admin = createUnixGrpcTransport(srv.socketPath);
  const transports: GrpcClientTransport[] = [admin];
  try {
    const bundle = await createClient(BundleService, admin).getBundle({});
    const roots = bundle.x509Authorities.map((a) => a.asn1);
    const a = await agentOn(srv, admin, roots, '127.0.0.1');
    transports.push(a.transport);
    const b = await agentOn(srv, admin, roots, '127.0.0.2');
    transports.push(b.transport);
    const svidA = createClient(SvidService, a.transport);
    const svidB = createClient(SvidService, b.transport);
    const csrA = (await csrFor(a.spiffeId)).csr;
    const csrB = (await csrFor(b.spiffeId)).csr;
    // Both agents served once before the flood (SPIRE's entry cache takes up to ~5 s to see a new
    // entry), so the flood starts on warm connections and full buckets.
    for (const [svid, x, csr] of [
      [svidA, a, csrA],
      [svidB, b, csrB],
    ] as const) {
      let last = '';
      await eventually(`an X509-SVID for ${x.spiffeId}`, async () => (last = await newX509(svid, x.entryId, csr)) === 'OK', {
        timeoutMs: 30_000,
        intervalMs: 250,
      }).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; last answer: ${last}`);
      });
    }
    // Buckets full again: they refill on the server's real clock (SPIRE's as ours: nothing to
    // inject, and a probe would spend tokens), so this pause is the refill, not a wait for an event.
    await new Promise((res) => setTimeout(res, 1100));

    // The flood: CSRs that do not parse (each still takes its token; the handler answers each
    // with InvalidArgument in its result), so the server's signing work does not slow the test.
    const junk = Array.from({ length: perCall }, () => ({ entryId: a.entryId, csr: new Uint8Array([0x30, 0x00]) }));
    const byCode: Record<string, number> = {};
    const messages = new Set<string>();
    let ok = 0;
    let next = 0;
    let flooding = true;
    const worker = async (): Promise<void> => {
      while (next < calls) {
        next++;
        try {
          await svidA.batchNewX509SVID({ params: junk }, { timeoutMs });
          ok++;
        } catch (e) {
          const c = codeName(e);
          byCode[c] = (byCode[c] ?? 0) + 1;
          if (e instanceof ConnectError && e.code === Code.ResourceExhausted) messages.add(e.rawMessage);
        }
      }
    };
    const other = { ok: 0, failed: [] as string[] };
    const otherLoop = (async () => {
      while (flooding) {
        const r = await newX509(svidB, b.entryId, csrB);
        if (r === 'OK') other.ok++;
        else other.failed.push(r);
      }
    })();
    await Promise.all(Array.from({ length: concurrency }, worker));
    flooding = false;
    await otherLoop;

    let overBurst = { code: 'OK', message: '' };
    try {
      await svidA.batchNewX509SVID(
        { params: Array.from({ length: 501 }, () => ({ entryId: a.entryId, csr: new Uint8Array([0x30, 0x00]) })) },
        { timeoutMs: 10_000 },
      );
    } catch (e) {
      overBurst = { code: codeName(e), message: e instanceof ConnectError ? e.rawMessage : String(e) };
    }
    return { flood: { ok, byCode, messages: [...messages].sort() }, other, overBurst };
  } finally {
    for (const t of transports) t.close();
  }
}

/** What SPIRE v1.13.0 answers the default flood (checked on SPIRE and on ztwim alike). */
export function assertFloodRefusedLikeSpire(r: FloodResult): void {
  assert.ok((r.flood.byCode['ResourceExhausted'] ?? 0) > 0, `flood refused: ${JSON.stringify(r.flood)}`);
  assert.ok(r.flood.ok >= 1, `the burst is served: ${JSON.stringify(r.flood)}`);
  assert.deepEqual(r.flood.messages, ['rejecting request due to certificate signing rate limiting: rate: Wait(n=400) would exceed context deadline']);
  for (const c of Object.keys(r.flood.byCode)) assert.ok(c === 'ResourceExhausted' || c === 'DeadlineExceeded', `unexpected ${c}: ${JSON.stringify(r.flood)}`);
  assert.deepEqual(r.other.failed, []);
  assert.ok(r.other.ok > 0, 'the other agent was served during the flood');
  assert.deepEqual(r.overBurst, {
    code: 'ResourceExhausted',
    message: 'rejecting request due to certificate signing rate limiting: rate (501) exceeds burst size (500)',
  });
}
