import { performance } from 'node:perf_hooks';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { invalidArgument, spiffeIdFromWire, spiffeIdToWire, unixSeconds, type Logger } from '@ztwim/core';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import { statusOf, type SvidService } from '@ztwim/proto';
import type { DataStore, Entry } from '../datastore/datastore.ts';
import { parseCsr } from '../ca/csr.ts';
import type { Authority } from './authority.ts';
import { callerKey } from './caller.ts';
import { grpcCodeResolver } from './errors.ts';

export interface SvidServiceDeps {
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
  readonly authority: Authority;
  readonly log: Logger;
  readonly nodeSelectors: (agentId: string) => Promise<Array<{ type: string; value: string }>>;
  /** After each SVID signed: its type and the seconds the CA took to sign it. */
  readonly onMint?: (kind: 'x509' | 'jwt', signSeconds: number) => void;
}

const MAX_BATCH = 500;

function workloadId(id: SpiffeId, td: TrustDomain): SpiffeId {
  if (!id.memberOf(td)) throw invalidArgument(`invalid SPIFFE ID: "${id}" is not a member of trust domain "${td.name}"`);
  if (id.isTrustDomainId()) throw invalidArgument(`invalid SPIFFE ID: "${id}" is not a workload in trust domain "${td.name}"; path is empty`);
  if (id.path === '/spire' || id.path.startsWith('/spire/')) {
    throw invalidArgument(`invalid SPIFFE ID: "${id}" is not a workload in trust domain "${td.name}"; path is in the reserved namespace "/spire"`);
  }
  return id;
}

function cleanAudience(aud: readonly string[]): string[] {
  const out = aud.filter((a) => a !== '');
  if (out.length === 0) throw invalidArgument('invalid JWT-SVID audience: cannot be empty');
  return out;
}

/** SPIRE's SVID service (spire.api.server.svid.v1). */
export function svidService(deps: SvidServiceDeps): ServiceImpl<typeof SvidService> {
  const td = deps.trustDomain;
  // One signing, timed on the monotonic clock (a duration for the metrics, not a time of day).
  const signed = async <T>(kind: 'x509' | 'jwt', sign: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await sign();
    deps.onMint?.(kind, (performance.now() - t0) / 1000);
    return r;
  };
  // Authorised entries by id, built once per answer of the store (which hands out the same frozen
  // array while the agent's entries are unchanged), so a signing call looks its entry up directly.
  const byId = new WeakMap<readonly Entry[], Map<string, Entry>>();
  const authorizedEntries = async (ctx: HandlerContext): Promise<(entryId: string) => Entry> => {
    const agentId = ctx.values.get(callerKey).agentId;
    if (agentId === undefined) throw new ConnectError('caller is not an agent', Code.PermissionDenied);
    const entries = await deps.dataStore.listAuthorizedEntries(agentId.toString(), await deps.nodeSelectors(agentId.toString()));
    let index = byId.get(entries);
    if (index === undefined) {
      index = new Map(entries.map((e) => [e.id, e]));
      if (Object.isFrozen(entries)) byId.set(entries, index);
    }
    const found = index;
    return (entryId) => {
      const e = found.get(entryId);
      if (e === undefined) throw new ConnectError('entry not found or not authorized', Code.NotFound);
      return e;
    };
  };
  return {
    async mintX509SVID(req) {
      if (req.csr.length === 0) throw invalidArgument('missing CSR');
      if (req.ttl < 0) throw invalidArgument('ttl must not be negative');
      const csr = parseCsr(req.csr);
      if (csr.uris.length !== 1) throw invalidArgument(`CSR must have exactly one URI SAN, got ${csr.uris.length}`);
      let id: SpiffeId;
      try {
        id = SpiffeId.parse(csr.uris[0] as string);
      } catch (e) {
        throw invalidArgument(`CSR URI SAN is invalid: ${(e as Error).message}`);
      }
      workloadId(id, td);
      const svid = await signed('x509', () =>
        deps.authority.signX509Svid({ publicKey: csr.publicKey, spiffeId: id, dnsNames: csr.dnsNames, ttlMs: req.ttl * 1000 }),
      );
      deps.log.info({ spiffe_id: id.toString() }, 'Minted X509-SVID');
      return { svid: { certChain: svid.certChain, id: spiffeIdToWire(id), expiresAt: BigInt(unixSeconds(svid.notAfter)) } };
    },

    async mintJWTSVID(req) {
      const id = workloadId(spiffeIdFromWire(req.id, 'invalid SPIFFE ID'), td);
      if (req.ttl < 0) throw invalidArgument('ttl must not be negative');
      const r = await signed('jwt', () => deps.authority.signJwtSvid({ spiffeId: id, audience: cleanAudience(req.audience), ttlMs: req.ttl * 1000 }));
      return { svid: { token: r.token, id: spiffeIdToWire(id), expiresAt: BigInt(unixSeconds(r.expiresAt)), issuedAt: BigInt(unixSeconds(r.issuedAt)) } };
    },

    async batchNewX509SVID(req, ctx) {
      if (req.params.length === 0) throw invalidArgument('missing parameters');
      if (req.params.length > MAX_BATCH) throw new ConnectError(`too many parameters: at most ${MAX_BATCH}`, Code.ResourceExhausted);
      const results = [];
      const authorizedEntry = await authorizedEntries(ctx);
      for (const p of req.params) {
        try {
          if (p.entryId === '') throw invalidArgument('missing entry ID');
          if (p.csr.length === 0) throw invalidArgument('missing CSR');
          const entry = authorizedEntry(p.entryId);
          const csr = parseCsr(p.csr);
          const svid = await signed('x509', () =>
            deps.authority.signX509Svid({
              publicKey: csr.publicKey,
              spiffeId: SpiffeId.parse(entry.spiffeId),
              dnsNames: entry.dnsNames,
              ttlMs: entry.x509SvidTtl * 1000,
            }),
          );
          results.push({
            status: statusOf(undefined),
            svid: { certChain: svid.certChain, id: spiffeIdToWire(entry.spiffeId), expiresAt: BigInt(unixSeconds(svid.notAfter)), hint: entry.hint },
          });
        } catch (e) {
          results.push({ status: statusOf(e, grpcCodeResolver) });
        }
      }
      return { results };
    },

    async newJWTSVID(req, ctx) {
      if (req.entryId === '') throw invalidArgument('missing entry ID');
      const entry = (await authorizedEntries(ctx))(req.entryId);
      const r = await signed('jwt', () =>
        deps.authority.signJwtSvid({
          spiffeId: SpiffeId.parse(entry.spiffeId),
          audience: cleanAudience(req.audience),
          ttlMs: entry.jwtSvidTtl * 1000,
        }),
      );
      return {
        svid: {
          token: r.token,
          id: spiffeIdToWire(entry.spiffeId),
          expiresAt: BigInt(unixSeconds(r.expiresAt)),
          issuedAt: BigInt(unixSeconds(r.issuedAt)),
          hint: entry.hint,
        },
      };
    },

    async newDownstreamX509CA() {
      throw new ConnectError('downstream X509 CAs are not supported by ztwim', Code.Unimplemented);
    },
  };
}
