// startAgent: bootstrap trust, attest (or resume from data_dir), sync loop, Workload API.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { ZtwimError, createLogger, systemClock, answerX509PopChallenge, marshalX509PopPayload, parseX509PopChallenge, type Clock, type Logger } from '@ztwim/core';
import { pemToDerList, SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { permissionDeniedReasonOf, PermissionDeniedDetails_Reason, type Bundle } from '@ztwim/proto';
import type { AgentConfig } from './config/agent-config.ts';
import { ServerClient, attestAgent, renewAgent, type AgentCredentials, type NodeAttestationData } from './client/server-client.ts';
import { CacheManager } from './manager/cache-manager.ts';
import { startWorkloadEndpoint } from './endpoints/workload-api.ts';
import { PeerTracker } from './attestation/workload/peer-tracker.ts';
import { UnixWorkloadAttestor } from './attestation/workload/unix.ts';

export interface AgentDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export interface RunningAgent {
  readonly socketPath: string;
  readonly agentId: string;
  /** Resolves when the agent stops; rejects with the reason if it stopped on its own (e.g. banned). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

interface AgentData { svid: string[]; bundle: string[]; reattestable: boolean; expiresAt: number; id: string }

function atomicWrite(file: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

function loadData(dir: string, log: Logger): { creds: AgentCredentials; roots: Uint8Array[] } | undefined {
  const f = path.join(dir, 'agent-data.json');
  if (!fs.existsSync(f)) return undefined;
  try {
    const d = JSON.parse(fs.readFileSync(f, 'utf8')) as AgentData;
    const key = fs.readFileSync(path.join(dir, 'agent-svid.key'));
    if (!Array.isArray(d.svid) || d.svid.length === 0 || !Array.isArray(d.bundle)) throw new Error('missing fields');
    crypto.createPrivateKey({ key, format: 'der', type: 'pkcs8' });
    return {
      creds: { chain: d.svid.map((b) => Buffer.from(b, 'base64')), keyDer: new Uint8Array(key), id: d.id, expiresAt: d.expiresAt, reattestable: d.reattestable },
      roots: d.bundle.map((b) => Buffer.from(b, 'base64')),
    };
  } catch (err) {
    log.error({ err, dataDir: dir }, 'agent data dir is corrupted; ignoring it');
    return undefined;
  }
}

function saveData(dir: string, creds: AgentCredentials, roots: readonly Uint8Array[]): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  atomicWrite(path.join(dir, 'agent-svid.key'), creds.keyDer, 0o600);
  const d: AgentData = {
    svid: creds.chain.map((c) => Buffer.from(c).toString('base64')),
    bundle: roots.map((c) => Buffer.from(c).toString('base64')),
    reattestable: creds.reattestable, expiresAt: creds.expiresAt, id: creds.id,
  };
  atomicWrite(path.join(dir, 'agent-data.json'), JSON.stringify(d), 0o600);
}

function deleteData(dir: string): void {
  for (const f of ['agent-data.json', 'agent-svid.key']) fs.rmSync(path.join(dir, f), { force: true });
}

async function bootstrapRoots(c: AgentConfig): Promise<Uint8Array[]> {
  let text: string | undefined = c.trustBundle;
  if (text === undefined && c.trustBundlePath !== undefined) text = fs.readFileSync(c.trustBundlePath, 'utf8');
  if (text === undefined && c.trustBundleUrl !== undefined) {
    const res = await fetch(c.trustBundleUrl);
    if (!res.ok) throw new ZtwimError('ERR_UNAVAILABLE', 'cannot download trust bundle', { fields: { status: res.status } });
    text = await res.text();
  }
  if (text === undefined) return [];
  if (c.trustBundleFormat === 'spiffe') {
    const b = SpiffeBundle.parse(TrustDomain.parse(c.trustDomain), text);
    return b.x509Authorities().map((x) => new Uint8Array(x));
  }
  return pemToDerList(text);
}

function attestationData(c: AgentConfig): NodeAttestationData | undefined {
  if (c.nodeAttestor.type === 'x509pop') {
    const key = crypto.createPrivateKey(fs.readFileSync(c.nodeAttestor.privateKeyPath));
    const certs = pemToDerList(fs.readFileSync(c.nodeAttestor.certificatePath, 'utf8'));
    if (c.nodeAttestor.intermediatesPath !== undefined) certs.push(...pemToDerList(fs.readFileSync(c.nodeAttestor.intermediatesPath, 'utf8')));
    return {
      type: 'custom', pluginType: 'x509pop',
      payload: marshalX509PopPayload({ certificates: certs }),
      answer: (ch) => answerX509PopChallenge(parseX509PopChallenge(ch), key, crypto.randomBytes(32)),
    };
  }
  return c.joinToken === undefined ? undefined : { type: 'join_token', token: c.joinToken };
}

function rootsOf(b: Bundle): Uint8Array[] { return b.x509Authorities.map((a) => a.asn1); }

export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<RunningAgent> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? createLogger({ level: config.logLevel, name: 'agent' });
  const opts = { host: config.serverAddress, port: config.serverPort, trustDomain: config.trustDomain };
  const persist = config.keyManager === 'disk';
  let stored = persist ? loadData(config.dataDir, log) : undefined;
  if (stored !== undefined && stored.creds.expiresAt <= clock.nowMs()) {
    log.warn({}, 'stored agent svid expired; re-attesting');
    stored = undefined;
  }
  let creds: AgentCredentials;
  let roots: Uint8Array[];
  if (stored !== undefined) {
    creds = stored.creds;
    roots = stored.roots;
    log.info({ spiffeId: creds.id }, 'resuming with stored agent svid');
  } else {
    const data = attestationData(config);
    if (data === undefined) throw new ZtwimError('ERR_CONFIG', 'no stored agent svid and no join token or x509pop configured');
    roots = await bootstrapRoots(config);
    if (roots.length === 0 && !config.insecureBootstrap) throw new ZtwimError('ERR_CONFIG', 'trust bundle is required (trust_bundle_path, trust_bundle_url or insecure_bootstrap)');
    const boot = new ServerClient({ ...opts, roots, insecure: config.insecureBootstrap });
    try {
      creds = await attestAgent(boot, data);
    } catch (e) {
      throw new ZtwimError('ERR_UNAVAILABLE', 'node attestation failed', { cause: e, fields: { reason: e instanceof Error ? e.message : String(e) } });
    } finally {
      boot.close();
    }
    log.info({ spiffeId: creds.id }, 'node attested');
  }
  let client = new ServerClient({ ...opts, roots }, creds);
  const cache = new CacheManager({ clock, logger: log, syncIntervalMs: config.syncIntervalMs, client: () => client });
  // Fetch the bundle right away (first sync).
  try {
    const b = await client.bundle.getBundle({});
    cache.setBundle(b);
    roots = rootsOf(b);
    if (persist) saveData(config.dataDir, creds, roots);
  } catch (e) {
    if (stored === undefined) { client.close(); throw new ZtwimError('ERR_UNAVAILABLE', 'cannot fetch bundle after attestation', { cause: e }); }
    log.warn({ err: e }, 'server unavailable at start; serving from cache when it returns');
  }
  const tracker = new PeerTracker({ attestors: [new UnixWorkloadAttestor({ ...config.unixAttestor, logger: log })], logger: log });
  const endpoint = await startWorkloadEndpoint({ socketPath: config.socketPath, cache, tracker, logger: log });

  const stop = new AbortController();
  const reconnect = (): void => {
    const old = client;
    client = new ServerClient({ ...opts, roots }, creds);
    old.close();
  };
  const isDenied = (e: unknown): e is ConnectError => e instanceof ConnectError && e.code === Code.PermissionDenied;
  const fatal = (e: ConnectError): ZtwimError => {
    const reason = permissionDeniedReasonOf(e);
    if (reason === PermissionDeniedDetails_Reason.AGENT_BANNED) {
      if (persist) deleteData(config.dataDir);
      return new ZtwimError('ERR_PERMISSION_DENIED', 'agent is banned', { cause: e });
    }
    if (reason === PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED) {
      if (persist) deleteData(config.dataDir);
      return new ZtwimError('ERR_PERMISSION_DENIED', 'agent is no longer attested', { cause: e });
    }
    return new ZtwimError('ERR_PERMISSION_DENIED', 'agent permission denied', { cause: e, fields: { reason: e.rawMessage } });
  };
  const loop = async (): Promise<void> => {
    for (;;) {
      try {
        await cache.sync();
        const b = cache.bundle;
        if (b !== undefined) roots = rootsOf(b);
        // Agent SVID renewal at half-life.
        const leaf = new crypto.X509Certificate(Buffer.from(creds.chain[0] ?? new Uint8Array()));
        const nb = Date.parse(leaf.validFrom);
        if (clock.nowMs() >= nb + (creds.expiresAt - nb) / 2) {
          try {
            const data = attestationData(config);
            if (creds.reattestable && data !== undefined) {
              const rc = new ServerClient({ ...opts, roots });
              try { creds = await attestAgent(rc, data); } finally { rc.close(); }
            } else {
              creds = await renewAgent(client, creds.reattestable);
            }
            log.info({ spiffeId: creds.id }, 'agent svid rotated');
            reconnect();
          } catch (e) {
            if (isDenied(e)) throw e;
            log.warn({ err: e }, 'agent svid rotation failed');
          }
        }
        if (persist && b !== undefined) saveData(config.dataDir, creds, roots);
      } catch (e) {
        if (isDenied(e)) throw fatal(e);
        log.warn({ err: e }, 'agent loop error');
      }
      try { await clock.sleep(cache.nextDelayMs(), stop.signal); } catch { return; }
    }
  };
  let closed = false;
  const done = loop().finally(async () => {
    client.close();
    await endpoint.close({ graceMs: 1000 });
  }).catch((e: unknown) => {
    if (!closed) log.error({ err: e }, 'agent stopped');
    throw e;
  });
  done.catch(() => undefined);
  return {
    socketPath: config.socketPath,
    agentId: creds.id,
    done,
    async close() {
      closed = true;
      stop.abort();
      await done.catch(() => undefined);
    },
  };
}
