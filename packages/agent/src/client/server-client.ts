// Agent -> server client: TLS with SPIFFE peer verification, node attestation, authorized calls.
import * as crypto from 'node:crypto';
import { createClient, type Client } from '@connectrpc/connect';
import {
  AgentHintsService,
  AgentService,
  BundleService,
  EntryService,
  SvidService,
  createTcpGrpcTransport,
  type GrpcClientTransport,
  type AttestAgentRequest,
  type Bundle,
  type Entry,
} from '@ztwim/proto';
import { concatDer, derToPem, SpiffeId, X509Svid, type TrustDomain } from '@ztwim/spiffe';
import { ZtwimError, internal } from '@ztwim/core';
import { create } from '@bufbuild/protobuf';
import { AttestAgentRequestSchema, type X509SVID } from '@ztwim/proto';
import type { AgentCredentials } from '../storage/storage.ts';
import { createCsr, generateEcKey } from './csr.ts';
import { translatingClient } from './errors.ts';
import type { ServerKeepalive } from './keepalive.ts';
import { RequestQueue } from './request-queue.ts';

export interface ServerClientOptions {
  readonly host: string;
  readonly port: number;
  readonly trustDomain: TrustDomain;
  /** DER root certificates trusted for the server's SVID; empty + insecure skips chain checks. */
  readonly roots: readonly Uint8Array[];
  readonly insecure?: boolean;
  /** HTTP/2 keepalive on the connection (a hung server is detected, its calls fail Unavailable). */
  readonly keepalive?: ServerKeepalive;
}

export type { AgentCredentials };
export { DEFAULT_SERVER_KEEPALIVE, type ServerKeepalive } from './keepalive.ts';

function uriSans(cert: { subjectaltname?: string }): string[] {
  return (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

function tlsOptions(o: ServerClientOptions, creds?: AgentCredentials): Record<string, unknown> {
  const expected = SpiffeId.fromSegments(o.trustDomain, 'spire', 'server').toString();
  const base: Record<string, unknown> = {
    servername: '',
    checkServerIdentity: (_host: string, cert: { subjectaltname?: string }) => {
      if (!uriSans(cert).includes(expected)) return internal(`server SVID id is not ${expected}`);
      return undefined;
    },
  };
  if (o.insecure === true || o.roots.length === 0) {
    base['rejectUnauthorized'] = false;
  } else {
    base['ca'] = o.roots.map((d) => derToPem(d, 'CERTIFICATE'));
  }
  if (creds !== undefined) {
    const pem = creds.svid.marshal();
    base['cert'] = pem.certificates;
    base['key'] = pem.privateKey;
  }
  return base;
}

export class ServerClient {
  readonly #opts: ServerClientOptions;
  readonly #transport: GrpcClientTransport;
  readonly agent: Client<typeof AgentService>;
  readonly entry: Client<typeof EntryService>;
  readonly svid: Client<typeof SvidService>;
  readonly bundle: Client<typeof BundleService>;
  /** ztwim servers only (spire-server answers Unimplemented): entry-change hints. */
  readonly hints: Client<typeof AgentHintsService>;

  constructor(opts: ServerClientOptions, creds?: AgentCredentials) {
    this.#opts = opts;
    const ka = opts.keepalive;
    this.#transport = createTcpGrpcTransport({
      host: opts.host,
      port: opts.port,
      tls: tlsOptions(opts, creds),
      defaultTimeoutMs: CALL_TIMEOUT_MS,
      ...(ka === undefined ? {} : { pingIntervalMs: ka.intervalMs, pingTimeoutMs: ka.timeoutMs, connectTimeoutMs: ka.timeoutMs }),
    });
    // Every call's ConnectError becomes a ZtwimError at this edge (errors.ts).
    this.agent = translatingClient(createClient(AgentService, this.#transport));
    this.entry = translatingClient(createClient(EntryService, this.#transport));
    this.svid = translatingClient(createClient(SvidService, this.#transport));
    this.bundle = translatingClient(createClient(BundleService, this.#transport));
    this.hints = translatingClient(createClient(AgentHintsService, this.#transport));
  }

  get options(): ServerClientOptions {
    return this.#opts;
  }

  close(): void {
    this.#transport.close();
  }
}

/** Default deadline of the agent's calls to the server. */
export const CALL_TIMEOUT_MS = 30_000;

/**
 * Call options for a bidi/server stream that the caller may leave early. connect-es clears a
 * stream's deadline timer only when the stream is read to its end or fails, so a stream left
 * with `break` + abort would keep a 30 s timer (and the process) alive. Instead the deadline is
 * an unref'd AbortSignal.timeout and connect's own timer is disabled (timeoutMs 0).
 */
export function streamCallOptions(ac: AbortController, timeoutMs = CALL_TIMEOUT_MS): { signal: AbortSignal; timeoutMs: number } {
  return { signal: AbortSignal.any([ac.signal, AbortSignal.timeout(timeoutMs)]), timeoutMs: 0 };
}

export type NodeAttestationData =
  | { readonly type: 'join_token'; readonly token: string }
  | { readonly type: 'custom'; readonly pluginType: string; readonly payload: Uint8Array; readonly answer: (challenge: Uint8Array) => Uint8Array };

/** Runs AttestAgent; returns the agent credentials. */
export async function attestAgent(client: ServerClient, data: NodeAttestationData): Promise<AgentCredentials> {
  const { privateKey, publicKey } = generateEcKey();
  const csr = createCsr(privateKey, publicKey);
  const type = data.type === 'join_token' ? 'join_token' : data.pluginType;
  const payload = data.type === 'join_token' ? new TextEncoder().encode(data.token) : data.payload;
  const requests = new RequestQueue<AttestAgentRequest>([
    create(AttestAgentRequestSchema, { step: { case: 'params', value: { data: { type, payload }, params: { csr } } } }),
  ]);
  const ac = new AbortController();
  try {
    for await (const res of client.agent.attestAgent(requests, streamCallOptions(ac))) {
      if (res.step.case === 'challenge') {
        if (data.type !== 'custom') throw new ZtwimError('ERR_INTERNAL', 'unexpected attestation challenge');
        requests.push(create(AttestAgentRequestSchema, { step: { case: 'challengeResponse', value: data.answer(res.step.value) } }));
      } else if (res.step.case === 'result') {
        const svid = res.step.value.svid;
        if (svid === undefined || svid.certChain.length === 0) throw new ZtwimError('ERR_INTERNAL', 'attestation result has no svid');
        return { svid: agentSvid(svid, privateKey), reattestable: res.step.value.reattestable };
      }
    }
  } finally {
    requests.end();
    // Leaving the loop early does not cancel a connect stream.
    ac.abort();
  }
  throw new ZtwimError('ERR_UNAVAILABLE', 'attestation stream ended without a result');
}

/** RenewAgent with a fresh key. */
export async function renewAgent(client: ServerClient, reattestable: boolean): Promise<AgentCredentials> {
  const { privateKey, publicKey } = generateEcKey();
  const csr = createCsr(privateKey, publicKey);
  const res = await client.agent.renewAgent({ params: { csr } });
  const svid = res.svid;
  if (svid === undefined) throw new ZtwimError('ERR_INTERNAL', 'renew result has no svid');
  return { svid: agentSvid(svid, privateKey), reattestable };
}

/** The server's answer as an X509Svid with our key: a chain that breaks the SVID rules is refused here. */
function agentSvid(svid: X509SVID, privateKey: crypto.KeyObject): X509Svid {
  try {
    return X509Svid.parseRaw(concatDer(svid.certChain), new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' })));
  } catch (e) {
    throw new ZtwimError('ERR_INTERNAL', `the server returned an unusable agent SVID: ${(e as Error).message}`, { cause: e });
  }
}

export type { Bundle, Entry };
