// Test helper: SPIRE's Agent service (agent-service.ts) over a temporary SQLite store, a real
// X.509 CA on a FakeClock, and a scripted AttestAgent client (spire-api-wire.md §1.2, §2.2).
import { generateKeyPairSync } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import { cryptoRandom, silentLogger, type Logger, type Random } from '@ztwim/core';
import { AttestAgentRequestSchema, toConnectError, type AttestAgentRequest } from '@ztwim/proto';
import { TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import type { NodeAttestor } from '../attestation/node-attestor.ts';
import { agentService } from './agent-service.ts';
import { grpcCodeResolver } from './errors.ts';

export type AgentSvc = ReturnType<typeof agentService>;

export interface AgentServiceHarness {
  readonly svc: AgentSvc;
  readonly ds: DataStore;
  readonly clock: FakeClock;
  readonly td: TrustDomain;
}

/** Builds the attestors of one service (registered by their names). */
export type Attestors = (ds: DataStore, clock: FakeClock, td: TrustDomain) => readonly NodeAttestor[];

export interface AgentServiceOptions {
  readonly attestors?: Attestors;
  readonly agentTtlMs?: number;
  readonly log?: Logger;
  readonly random?: Random;
  readonly onAgentAttested?: (agentId: string) => void;
}

/** Runs `fn` with an Agent service of trust domain example.org (agent SVID TTL 10 min by default). */
export async function withAgentService(opts: AgentServiceOptions, fn: (h: AgentServiceHarness) => Promise<void>): Promise<void> {
  const td = TrustDomain.parse('example.org');
  await withTempSqliteStore(async (ds) => {
    const clock = new FakeClock(Date.now());
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ca = new X509Ca({
      trustDomain: td,
      key,
      chain: createCaCertificate({ trustDomain: td, key, ttlMs: 24 * 3600_000, now: clock.now() }),
      clock,
      x509SvidTtlMs: 3600_000,
    });
    const attestors = new Map<string, NodeAttestor>((opts.attestors?.(ds, clock, td) ?? []).map((a) => [a.name, a]));
    const svc = agentService({
      dataStore: ds,
      trustDomain: td,
      authority: {
        signX509Svid: async (p) => ca.signX509Svid(p),
        signJwtSvid: async () => {
          throw new Error('unused');
        },
      },
      attestors,
      agentTtlMs: opts.agentTtlMs ?? 600_000,
      clock,
      random: opts.random ?? cryptoRandom,
      log: opts.log ?? silentLogger(),
      ...(opts.onAgentAttested === undefined ? {} : { onAgentAttested: opts.onAgentAttested }),
    });
    await fn({ svc, ds, clock, td });
  });
}

/** Drives AttestAgent with the given requests (as sent, then the stream ends); returns the responses. */
export async function attestRaw(svc: AgentSvc, requests: readonly AttestAgentRequest[]) {
  async function* reqs(): AsyncGenerator<AttestAgentRequest> {
    yield* requests;
  }
  const out = [];
  for await (const r of svc.attestAgent!(reqs(), {} as HandlerContext)) out.push(r);
  return out;
}

/**
 * Runs AttestAgent as an agent does: `params` first, then one answer per challenge (the challenge
 * reversed unless `answer` says otherwise); returns the responses.
 */
export async function attestAs(
  svc: AgentSvc,
  type: string,
  payload: string,
  csr: Uint8Array,
  answer: (c: Uint8Array) => Uint8Array = (c) => Buffer.from(c).reverse(),
) {
  const queue: AttestAgentRequest[] = [
    create(AttestAgentRequestSchema, {
      step: { case: 'params', value: { data: { type, payload: new TextEncoder().encode(payload) }, params: { csr } } },
    }),
  ];
  let wake: (() => void) | undefined;
  let done = false;
  async function* reqs(): AsyncGenerator<AttestAgentRequest> {
    for (;;) {
      const n = queue.shift();
      if (n !== undefined) yield n;
      else if (done) return;
      else await new Promise<void>((r) => (wake = r));
    }
  }
  const out = [];
  try {
    for await (const r of svc.attestAgent!(reqs(), {} as HandlerContext)) {
      out.push(r);
      if (r.step?.case === 'challenge') {
        queue.push(create(AttestAgentRequestSchema, { step: { case: 'challengeResponse', value: answer(r.step.value as Uint8Array) } }));
        wake?.();
      }
    }
  } finally {
    done = true;
    wake?.();
  }
  return out;
}

/** The error as the server's error-mapping interceptor puts it on the wire. */
export const wireError = (e: unknown) => toConnectError(e, grpcCodeResolver);
