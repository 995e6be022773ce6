/**
 * Test-only fake Workload API: a connect-node gRPC server on a Unix socket that serves
 * replaceable X.509/JWT state, enforces the `workload.spiffe.io: true` header like SPIRE and
 * pushes a new message on every state change.
 */
import * as http2 from 'node:http2';
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { SignJWT } from 'jose';
import type { KeyObject } from 'node:crypto';
import { SpiffeWorkloadAPI } from '../workload/proto/workload/workload_pb.ts';
import { makeCert, keyPair, pkcs8, publicJwk, CA_KU, EKU_CLIENT, EKU_SERVER, privateKeyObject, type Cert } from './fixtures.ts';

export interface FakeSvid {
  readonly spiffeId: string;
  readonly certs: Uint8Array[];
  readonly key: Uint8Array;
  readonly bundle: Uint8Array;
  readonly hint?: string;
}

export interface FakeState {
  x509Svids: FakeSvid[];
  federated: Record<string, Uint8Array>;
  x509Bundles: Record<string, Uint8Array>;
  jwtBundles: Record<string, Uint8Array>;
  /** Error to fail X.509 streams with (e.g. PermissionDenied). */
  x509Error?: ConnectError;
}

export interface JwtIssuer {
  readonly kid: string;
  readonly key: KeyObject;
  readonly jwks: Uint8Array;
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));

export interface TestCa {
  readonly td: string;
  readonly root: Cert;
  issue(path: string, name?: string): Promise<FakeSvid>;
}

/** A CA for `td` valid now (root → leaf), issuing SVIDs with fresh keys per name; `keyName` picks another root key. */
export async function makeTestCa(td: string, keyName = td): Promise<TestCa> {
  const now = Date.now();
  const notBefore = new Date(now - 3600_000);
  const notAfter = new Date(now + 3600_000);
  const rootKeys = await keyPair(`fake-root-${keyName}`);
  const root = await makeCert({ subject: `CN=root ${td}`, keys: rootKeys, ca: true, keyUsage: CA_KU, uris: [`spiffe://${td}`], notBefore, notAfter });
  return {
    td,
    root,
    async issue(path, name = `${td}${path}`) {
      const keys = await keyPair(`fake-leaf-${name}`);
      const leaf = await makeCert({
        subject: 'O=SPIRE',
        issuer: root,
        keys,
        ca: false,
        keyUsage: 1 | 4 | 16,
        eku: [EKU_SERVER, EKU_CLIENT],
        uris: [`spiffe://${td}${path}`],
        notBefore,
        notAfter,
      });
      return { spiffeId: `spiffe://${td}${path}`, certs: [leaf.der], key: await pkcs8(keys), bundle: root.der };
    },
  };
}

export async function makeJwtIssuer(name: string): Promise<JwtIssuer> {
  const keys = await keyPair(`jwt-${name}`);
  const kid = `kid-${name}`;
  const jwk = { ...(await publicJwk(keys)), kid };
  return { kid, key: await privateKeyObject(keys), jwks: new TextEncoder().encode(JSON.stringify({ keys: [jwk] })) };
}

export async function signJwtSvid(issuer: JwtIssuer, sub: string, aud: string[], ttlSeconds = 300): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, aud, iat: now, exp: now + ttlSeconds })
    .setProtectedHeader({ alg: 'ES256', kid: issuer.kid, typ: 'JWT' })
    .sign(issuer.key);
}

export class FakeWorkloadApi {
  readonly socketPath: string;
  state: FakeState;
  jwtIssuer: JwtIssuer | undefined;
  /** Header values seen on each call. */
  readonly headersSeen: (string | null)[] = [];
  #events = new EventEmitter();
  #server: http2.Http2Server | undefined;
  #sessions = new Set<http2.ServerHttp2Session>();

  constructor(socketPath: string, state: FakeState) {
    this.socketPath = socketPath;
    this.state = state;
    this.#events.setMaxListeners(100);
  }

  #tcpPort = 0;

  /** `unix://<socketPath>`, or `tcp://127.0.0.1:<port>` when socketPath is `tcp`. */
  get address(): string {
    return this.socketPath === 'tcp' ? `tcp://127.0.0.1:${this.#tcpPort}` : `unix://${this.socketPath}`;
  }

  /** Replaces the state and pushes it to every open stream. */
  update(patch: Partial<FakeState>): void {
    this.state = { ...this.state, ...patch };
    this.#events.emit('change');
  }

  #check(ctx: HandlerContext): void {
    const v = ctx.requestHeader.get('workload.spiffe.io');
    this.headersSeen.push(v);
    if (v !== 'true') throw new ConnectError('security header missing from request', Code.InvalidArgument);
  }

  async *#stream<T>(ctx: HandlerContext, build: () => T): AsyncGenerator<T> {
    this.#check(ctx);
    for (;;) {
      if (this.state.x509Error !== undefined) throw this.state.x509Error;
      yield build();
      await new Promise<void>((resolve, reject) => {
        const onChange = (): void => {
          ctx.signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          this.#events.removeListener('change', onChange);
          reject(ctx.signal.reason);
        };
        this.#events.once('change', onChange);
        ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  async start(): Promise<void> {
    if (this.socketPath !== 'tcp') rmSync(this.socketPath, { force: true });
    const routes = (router: ConnectRouter): void => {
      router.service(SpiffeWorkloadAPI, {
        fetchX509SVID: (_req, ctx) =>
          this.#stream(ctx, () => ({
            svids: this.state.x509Svids.map((s) => ({ spiffeId: s.spiffeId, x509Svid: concat(s.certs), x509SvidKey: s.key, bundle: s.bundle, hint: s.hint ?? '' })),
            federatedBundles: this.state.federated,
          })),
        fetchX509Bundles: (_req, ctx) => this.#stream(ctx, () => ({ bundles: this.state.x509Bundles })),
        fetchJWTBundles: (_req, ctx) => this.#stream(ctx, () => ({ bundles: this.state.jwtBundles })),
        fetchJWTSVID: async (req, ctx) => {
          this.#check(ctx);
          if (req.audience.length === 0) throw new ConnectError('audience must be specified', Code.InvalidArgument);
          const issuer = this.jwtIssuer;
          if (issuer === undefined) throw new ConnectError('no identity issued', Code.PermissionDenied);
          const ids = this.state.x509Svids.map((s) => s.spiffeId).filter((id) => req.spiffeId === '' || id === req.spiffeId);
          if (ids.length === 0) throw new ConnectError('no identity issued', Code.PermissionDenied);
          return { svids: await Promise.all(ids.map(async (id) => ({ spiffeId: id, svid: await signJwtSvid(issuer, id, req.audience), hint: '' }))) };
        },
        validateJWTSVID: async (req, ctx) => {
          this.#check(ctx);
          if (req.audience === '') throw new ConnectError('audience must be specified', Code.InvalidArgument);
          if (req.svid === '') throw new ConnectError('svid must be specified', Code.InvalidArgument);
          if (!req.svid.includes('.')) throw new ConnectError('token is malformed', Code.InvalidArgument);
          return { spiffeId: '' };
        },
      });
    };
    const server = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
    server.on('session', (s) => {
      this.#sessions.add(s);
      s.once('close', () => this.#sessions.delete(s));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (this.socketPath === 'tcp') server.listen(this.#tcpPort, '127.0.0.1', () => resolve());
      else server.listen(this.socketPath, () => resolve());
    });
    const a = server.address();
    if (typeof a === 'object' && a !== null) this.#tcpPort = a.port;
  }

  /** Stops the server, dropping every connection (clients see their streams fail). */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const s of this.#sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
