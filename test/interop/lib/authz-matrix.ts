// Who may call which Server API method: every method of the services ztwim serves, called by
// every kind of caller, against a real server on real sockets and TLS. The same code runs
// against ztwim's server (test/integration/server-authz-matrix.test.ts) and against the real
// SPIRE v1.13.0 server (test/interop/server-authz-vs-spire.test.ts), which must agree cell by cell.
//
// Each method is called with an empty request (one empty message for client/bidi streams, the
// first message read for server streams). "allowed" means the call got past authorization,
// whatever it answered then (OK, InvalidArgument, NotFound...); "denied" is PermissionDenied,
// Unauthenticated or a TLS handshake refusal (SPIRE refuses untrusted client certificates in the
// handshake, ztwim answers Unauthenticated) or a service the endpoint does not serve at all
// (SPIRE's Debug and Health on its TCP port). Any other Unimplemented counts as allowed: it comes
// from a handler the call reached (ztwim has no downstream CA, no Health Watch). The expected column is SPIRE's policy
// (pkg/server/authpolicy/policy_data.json, spire-api-wire.md §3), written out in POLICY below.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { create, type DescMessage, type DescMethod, type DescService } from '@bufbuild/protobuf';
import * as x509 from '@peculiar/x509';
import {
  AgentService,
  BundleService,
  DebugService,
  EntryService,
  HealthService,
  SvidService,
  TrustDomainService,
  LocalAuthorityService,
  createTcpGrpcTransport,
  createUnixGrpcTransport,
  PermissionDeniedDetails_Reason,
  permissionDeniedReasonOf,
  type GrpcClientTransport,
} from '@ztwim/proto';
import { concatDer, derToPem, SpiffeId, TrustDomain, X509Svid } from '@ztwim/spiffe';
import { ServerClient, attestAgent, streamCallOptions, type AgentCredentials } from '../../../packages/agent/src/client/server-client.ts';
import { foreignSvid } from './agent-endpoint.ts';
import { eventually } from '@ztwim/testkit';

/** The Server API services ztwim serves (SPIRE's Logger is not served). */
export const SERVICES: readonly DescService[] = [
  AgentService,
  EntryService,
  SvidService,
  BundleService,
  DebugService,
  HealthService,
  TrustDomainService,
  LocalAuthorityService,
];

type Role = 'any' | 'local' | 'admin' | 'agent' | 'downstream';

/** SPIRE v1.13.0's authorization policy for these services; a method missing here is denied to everyone. */
export const POLICY: Readonly<Record<string, readonly Role[]>> = {
  'spire.api.server.svid.v1.SVID/MintX509SVID': ['admin', 'local'],
  'spire.api.server.svid.v1.SVID/MintJWTSVID': ['admin', 'local'],
  'spire.api.server.svid.v1.SVID/BatchNewX509SVID': ['agent'],
  'spire.api.server.svid.v1.SVID/NewJWTSVID': ['agent'],
  'spire.api.server.svid.v1.SVID/NewDownstreamX509CA': ['downstream'],
  'spire.api.server.bundle.v1.Bundle/GetBundle': ['any'],
  'spire.api.server.bundle.v1.Bundle/AppendBundle': ['admin', 'local'],
  'spire.api.server.bundle.v1.Bundle/PublishJWTAuthority': ['downstream'],
  'spire.api.server.bundle.v1.Bundle/CountBundles': ['admin', 'local'],
  'spire.api.server.bundle.v1.Bundle/ListFederatedBundles': ['admin', 'local'],
  'spire.api.server.bundle.v1.Bundle/GetFederatedBundle': ['admin', 'local', 'agent'],
  'spire.api.server.bundle.v1.Bundle/BatchCreateFederatedBundle': ['admin', 'local'],
  'spire.api.server.bundle.v1.Bundle/BatchUpdateFederatedBundle': ['admin', 'local'],
  'spire.api.server.bundle.v1.Bundle/BatchSetFederatedBundle': ['admin', 'local'],
  'spire.api.server.bundle.v1.Bundle/BatchDeleteFederatedBundle': ['admin', 'local'],
  'spire.api.server.debug.v1.Debug/GetInfo': ['local'],
  'spire.api.server.entry.v1.Entry/CountEntries': ['admin', 'local'],
  'spire.api.server.entry.v1.Entry/ListEntries': ['admin', 'local'],
  'spire.api.server.entry.v1.Entry/GetEntry': ['admin', 'local'],
  'spire.api.server.entry.v1.Entry/BatchCreateEntry': ['admin', 'local'],
  'spire.api.server.entry.v1.Entry/BatchUpdateEntry': ['admin', 'local'],
  'spire.api.server.entry.v1.Entry/BatchDeleteEntry': ['admin', 'local'],
  'spire.api.server.entry.v1.Entry/GetAuthorizedEntries': ['agent'],
  'spire.api.server.entry.v1.Entry/SyncAuthorizedEntries': ['agent'],
  'spire.api.server.agent.v1.Agent/CountAgents': ['admin', 'local'],
  'spire.api.server.agent.v1.Agent/ListAgents': ['admin', 'local'],
  'spire.api.server.agent.v1.Agent/GetAgent': ['admin', 'local'],
  'spire.api.server.agent.v1.Agent/DeleteAgent': ['admin', 'local'],
  'spire.api.server.agent.v1.Agent/BanAgent': ['admin', 'local'],
  'spire.api.server.agent.v1.Agent/AttestAgent': ['any'],
  'spire.api.server.agent.v1.Agent/RenewAgent': ['agent'],
  'spire.api.server.agent.v1.Agent/CreateJoinToken': ['admin', 'local'],
  'spire.api.server.trustdomain.v1.TrustDomain/ListFederationRelationships': ['admin', 'local'],
  'spire.api.server.trustdomain.v1.TrustDomain/GetFederationRelationship': ['admin', 'local'],
  'spire.api.server.trustdomain.v1.TrustDomain/BatchCreateFederationRelationship': ['admin', 'local'],
  'spire.api.server.trustdomain.v1.TrustDomain/BatchUpdateFederationRelationship': ['admin', 'local'],
  'spire.api.server.trustdomain.v1.TrustDomain/BatchDeleteFederationRelationship': ['admin', 'local'],
  'spire.api.server.trustdomain.v1.TrustDomain/RefreshBundle': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/GetJWTAuthorityState': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/PrepareJWTAuthority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/ActivateJWTAuthority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/TaintJWTAuthority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/RevokeJWTAuthority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/GetX509AuthorityState': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/PrepareX509Authority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/ActivateX509Authority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/TaintX509Authority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/TaintX509UpstreamAuthority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/RevokeX509Authority': ['admin', 'local'],
  'spire.api.server.localauthority.v1.LocalAuthority/RevokeX509UpstreamAuthority': ['admin', 'local'],
  'grpc.health.v1.Health/Check': ['local'],
  'grpc.health.v1.Health/Watch': ['local'],
};

export type CallerKind =
  'local' | 'admin-config' | 'admin-entry' | 'downstream' | 'agent' | 'banned-agent' | 'evicted-agent' | 'expired-agent' | 'workload' | 'no-cert' | 'rogue-ca';

/** The roles each caller holds; an untrusted certificate is refused even for `any` methods. */
const CALLER_ROLES: Readonly<Record<CallerKind, { roles: readonly Role[]; untrusted?: true }>> = {
  local: { roles: ['local'] },
  'admin-config': { roles: ['admin'] },
  'admin-entry': { roles: ['admin'] },
  downstream: { roles: ['downstream'] },
  agent: { roles: ['agent'] },
  'banned-agent': { roles: [] },
  'evicted-agent': { roles: [] },
  'expired-agent': { roles: [], untrusted: true },
  workload: { roles: [] },
  'no-cert': { roles: [] },
  'rogue-ca': { roles: [], untrusted: true },
};

export const CALLER_KINDS = Object.keys(CALLER_ROLES) as CallerKind[];

export type Verdict = 'allowed' | 'denied';

export interface Cell {
  readonly verdict: Verdict;
  /** gRPC code name (or OK) and message, for failure output. */
  readonly detail: string;
}

export type Matrix = Map<CallerKind, Map<string, Cell>>;

export const fullName = (s: DescService, m: DescMethod): string => `${s.typeName}/${m.name}`;

/** SPIRE's policy as the expected verdict of a caller on a method. */
export function expectedVerdict(caller: CallerKind, method: string): Verdict {
  const c = CALLER_ROLES[caller];
  if (c.untrusted === true) return 'denied';
  const roles = POLICY[method] ?? [];
  return roles.includes('any') || roles.some((r) => c.roles.includes(r)) ? 'allowed' : 'denied';
}

/** A server reachable on its admin socket and TCP port. */
export interface MatrixServer {
  readonly socketPath: string;
  readonly port: number;
  readonly trustDomain: string;
  stop(): Promise<void>;
}

export const CONFIG_ADMIN_PATH = '/config-admin';

/** `server { }` lines the matrix servers need: the admin_ids caller. */
export function matrixServerConfig(td: string, agentTtl?: string): string {
  return `  admin_ids = ["spiffe://${td}${CONFIG_ADMIN_PATH}"]\n${agentTtl === undefined ? '' : `  agent_ttl = "${agentTtl}"\n`}`;
}

export function tlsOptions(td: string, roots: readonly Uint8Array[], creds?: { svid: X509Svid }): Record<string, unknown> {
  const expected = `URI:spiffe://${td}/spire/server`;
  return {
    servername: '',
    ca: roots.map((d) => derToPem(d, 'CERTIFICATE')),
    checkServerIdentity: (_h: string, cert: { subjectaltname?: string }) =>
      (cert.subjectaltname ?? '')
        .split(',')
        .map((s) => s.trim())
        .includes(expected)
        ? undefined
        : new Error(`server is not ${expected}`),
    ...(creds === undefined ? {} : { cert: creds.svid.marshal().certificates, key: creds.svid.marshal().privateKey }),
  };
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A DER CSR with one URI SAN (what MintX509SVID needs), and its key. */
export async function csrFor(id: string): Promise<{ csr: Uint8Array; key: KeyObject }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), EC, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), EC, true, ['verify']),
  };
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }])],
  });
  return { csr: new Uint8Array(req.rawData), key: privateKey };
}

/** A new agent: a join token from the admin socket, attested over TLS to the server's port from 127.0.0.1. */
export async function attestWithJoinToken(
  srv: { port: number; trustDomain: string },
  admin: GrpcClientTransport,
  roots: Uint8Array[],
): Promise<AgentCredentials> {
  const token = await createClient(AgentService, admin).createJoinToken({ ttl: 600 });
  const boot = new ServerClient({ host: '127.0.0.1', port: srv.port, trustDomain: TrustDomain.parse(srv.trustDomain), roots });
  try {
    return await attestAgent(boot, { type: 'join_token', token: token.value });
  } finally {
    boot.close();
  }
}

/** The credentials of every caller kind but `expired-agent`, made through the server's admin socket. */
async function makeCallers(
  srv: MatrixServer,
  admin: GrpcClientTransport,
  roots: Uint8Array[],
): Promise<Map<CallerKind, AgentCredentials | 'local' | undefined>> {
  const td = srv.trustDomain;
  const svid = createClient(SvidService, admin);
  const entry = createClient(EntryService, admin);
  const agentApi = createClient(AgentService, admin);
  const idOf = (s: string) => ({ trustDomain: td, path: SpiffeId.parse(s).path });
  const mint = async (id: string): Promise<AgentCredentials> => {
    const { csr, key } = await csrFor(id);
    const r = await svid.mintX509SVID({ csr, ttl: 3600 });
    const chain = r.svid?.certChain ?? [];
    if (chain.length === 0) throw new Error(`MintX509SVID for ${id} returned no chain`);
    return { svid: X509Svid.parseRaw(concatDer(chain), new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }))), reattestable: false };
  };
  const attest = (): Promise<AgentCredentials> => attestWithJoinToken(srv, admin, roots);
  const createEntry = async (path: string, parent: string, flags: { admin?: boolean; downstream?: boolean }): Promise<void> => {
    const r = await entry.batchCreateEntry({
      entries: [{ spiffeId: { trustDomain: td, path }, parentId: idOf(parent), selectors: [{ type: 'unix', value: 'uid:0' }], ...flags }],
    });
    if (r.results[0]?.status?.code !== 0) throw new Error(`create entry ${path}: ${r.results[0]?.status?.message ?? 'no result'}`);
  };

  const agent = await attest();
  const banned = await attest();
  const evicted = await attest();
  const server = `spiffe://${td}/spire/server`;
  await createEntry('/admin-entry-caller', server, { admin: true });
  await createEntry('/downstream-caller', server, { downstream: true });
  await createEntry('/workload', agent.svid.id.toString(), {});
  const callers = new Map<CallerKind, AgentCredentials | 'local' | undefined>([
    ['local', 'local'],
    ['admin-config', await mint(`spiffe://${td}${CONFIG_ADMIN_PATH}`)],
    ['admin-entry', await mint(`spiffe://${td}/admin-entry-caller`)],
    ['downstream', await mint(`spiffe://${td}/downstream-caller`)],
    ['agent', agent],
    ['banned-agent', banned],
    ['evicted-agent', evicted],
    ['workload', await mint(`spiffe://${td}/workload`)],
    ['no-cert', undefined],
    ['rogue-ca', foreignSvid(td, agent.svid.id.toString())],
  ]);
  // Used once before the ban / eviction, so a server remembering accepted agents must forget them.
  for (const c of [banned, evicted]) await callAs(srv, roots, c, EntryService, 'GetAuthorizedEntries');
  await agentApi.banAgent({ id: idOf(banned.svid.id.toString()) });
  await agentApi.deleteAgent({ id: idOf(evicted.svid.id.toString()) });
  return callers;
}

async function callAs(srv: MatrixServer, roots: Uint8Array[], creds: AgentCredentials, svc: DescService, name: string): Promise<void> {
  const t = createTcpGrpcTransport({ host: '127.0.0.1', port: srv.port, tls: tlsOptions(srv.trustDomain, roots, creds), defaultTimeoutMs: 10_000 });
  try {
    const m = svc.methods.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no method ${name}`);
    const cell = await callEmpty(t, svc, m);
    if (cell.verdict !== 'allowed') throw new Error(`${name} as ${creds.svid.id.toString()}: ${cell.detail}`);
  } finally {
    t.close();
  }
}

type AnyFn = (...args: unknown[]) => unknown;

/** One call with an empty request, classified. */
async function callEmpty(transport: GrpcClientTransport, svc: DescService, m: DescMethod): Promise<Cell> {
  const client = createClient(svc, transport) as unknown as Record<string, AnyFn>;
  const fn = client[m.localName];
  if (fn === undefined) throw new Error(`client has no ${m.localName}`);
  const input = m.input as DescMessage;
  const ac = new AbortController();
  const opts = streamCallOptions(ac, 10_000);
  try {
    if (m.methodKind === 'unary') {
      await fn(create(input), { timeoutMs: 10_000 });
    } else if (m.methodKind === 'server_streaming') {
      for await (const _ of fn(create(input), opts) as AsyncIterable<unknown>) break;
    } else {
      async function* one(): AsyncGenerator<unknown> {
        yield create(input);
      }
      const res = fn(one(), opts);
      if (m.methodKind === 'client_streaming') await res;
      else for await (const _ of res as AsyncIterable<unknown>) break;
    }
    return { verdict: 'allowed', detail: 'OK' };
  } catch (e) {
    return classify(e);
  } finally {
    ac.abort();
  }
}

function reasonName(r: PermissionDeniedDetails_Reason): string {
  return Object.entries(PermissionDeniedDetails_Reason).find(([, v]) => v === r)?.[0] ?? String(r);
}

export function classify(e: unknown): Cell {
  if (!(e instanceof ConnectError)) return { verdict: 'allowed', detail: `non-gRPC error: ${String(e)}` };
  const reason = permissionDeniedReasonOf(e);
  const detail = `${Code[e.code]}: ${e.rawMessage}${reason === undefined ? '' : ` [${reasonName(reason)}]`}`;
  if (e.code === Code.PermissionDenied || e.code === Code.Unauthenticated) return { verdict: 'denied', detail };
  // SPIRE serves Debug and Health on the admin socket only: on its TCP port they are unknown
  // services (grpc-go answers before any interceptor). Not reachable counts as refused.
  if (e.code === Code.Unimplemented && /^unknown (service|method) /.test(e.rawMessage)) return { verdict: 'denied', detail };
  // A TLS handshake refused by the server (SPIRE's answer to an untrusted client certificate).
  if ((e.code === Code.Internal || e.code === Code.Unavailable || e.code === Code.Unknown) && /alert|handshake|certificate/i.test(e.rawMessage)) {
    return { verdict: 'denied', detail };
  }
  return { verdict: 'allowed', detail };
}

async function row(srv: MatrixServer, roots: Uint8Array[], creds: AgentCredentials | 'local' | undefined): Promise<Map<string, Cell>> {
  const t =
    creds === 'local'
      ? createUnixGrpcTransport(srv.socketPath)
      : createTcpGrpcTransport({ host: '127.0.0.1', port: srv.port, tls: tlsOptions(srv.trustDomain, roots, creds), defaultTimeoutMs: 10_000 });
  const out = new Map<string, Cell>();
  try {
    for (const s of SERVICES) for (const m of s.methods) out.set(fullName(s, m), await callEmpty(t, s, m));
  } finally {
    t.close();
  }
  return out;
}

export interface MatrixOptions {
  /** Starts a server with these lines added inside `server { }`. */
  readonly start: (extraServerConfig: string) => Promise<MatrixServer>;
  readonly trustDomain: string;
}

/**
 * Every caller kind × every method. The expired agent comes from a second server whose agent
 * SVIDs live 2 s (real time: SPIRE's clock cannot be injected), attested, used, then left to expire.
 */
export async function authzMatrix(o: MatrixOptions): Promise<Matrix> {
  const m: Matrix = new Map();
  const srv = await o.start(matrixServerConfig(o.trustDomain));
  const admin = createUnixGrpcTransport(srv.socketPath);
  try {
    const roots = (await createClient(BundleService, admin).getBundle({})).x509Authorities.map((a) => a.asn1);
    const callers = await makeCallers(srv, admin, roots);
    for (const [kind, creds] of callers) m.set(kind, await row(srv, roots, creds));
  } finally {
    admin.close();
    await srv.stop();
  }
  const short = await o.start(matrixServerConfig(o.trustDomain, '2s'));
  const admin2 = createUnixGrpcTransport(short.socketPath);
  try {
    const roots = (await createClient(BundleService, admin2).getBundle({})).x509Authorities.map((a) => a.asn1);
    const creds = await attestWithJoinToken(short, admin2, roots);
    await callAs(short, roots, creds, EntryService, 'GetAuthorizedEntries');
    // The server's own clock is real: its 2 s SVID expires in real time.
    await eventually('the agent SVID expired (+1 s)', () => Date.now() > creds.svid.expiresAt().getTime() + 1000, { timeoutMs: 30_000, intervalMs: 100 });
    m.set('expired-agent', await row(short, roots, creds));
  } finally {
    admin2.close();
    await short.stop();
  }
  return m;
}

/** Cells where the matrix differs from `expected` (caller, method, got, want, detail). */
export function differences(m: Matrix, expected: (c: CallerKind, method: string) => Verdict): string[] {
  const out: string[] = [];
  for (const [caller, cells] of m) {
    for (const [method, cell] of cells) {
      const want = expected(caller, method);
      if (cell.verdict !== want) out.push(`${caller} × ${method}: got ${cell.verdict} (${cell.detail}), want ${want}`);
    }
  }
  return out;
}

/**
 * Whether a process running as `uid` can connect to the Unix socket at `path` (the admin
 * socket's rule is file permissions: only whoever can open it is "local"). Runs a child node
 * process with that uid; the caller must be root.
 */
export async function socketReachableAs(path: string, uid: number, gid: number): Promise<string> {
  const script = `const s=require('node:net').connect(${JSON.stringify(path)});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',(e)=>console.log(e.code))`;
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { uid, gid, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out.trim()));
  });
}

/**
 * Who can open a server's admin socket: root and nobody (uid/gid 65534). The socket's temp dir
 * (0700) is opened first so that only the server's own modes (socket 0770) decide.
 */
export async function adminSocketReach(socketPath: string): Promise<{ root: string; nobody: string }> {
  chmodSync(dirname(socketPath), 0o755);
  return { root: await socketReachableAs(socketPath, 0, 0), nobody: await socketReachableAs(socketPath, 65534, 65534) };
}
