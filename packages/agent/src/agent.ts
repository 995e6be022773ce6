// startAgent: bootstrap trust, attest (or resume from data_dir), sync loop, Workload API.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { ZtwimError, createLogger, listenError, lockDataDir, Metrics, serveMetrics, isZtwimError, type DataDirLock, systemClock, answerX509PopChallenge, marshalX509PopPayload, parseX509PopChallenge, type Clock, type Logger } from '@ztwim/core';
import { pemToDerList, SpiffeBundle, SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { permissionDeniedReasonOf, PermissionDeniedDetails_Reason, type Bundle } from '@ztwim/proto';
import type { AgentConfig } from './config/agent-config.ts';
import { watchHints } from './client/hints.ts';
import { ServerClient, attestAgent, renewAgent, type AgentCredentials, type NodeAttestationData } from './client/server-client.ts';
import { CacheManager } from './manager/cache-manager.ts';
import { startWorkloadEndpoint } from './endpoints/workload-api.ts';
import { PeerTracker } from './attestation/workload/peer-tracker.ts';
import { UnixWorkloadAttestor } from './attestation/workload/unix.ts';
import { K8sWorkloadAttestor } from './attestation/workload/k8s.ts';
import { k8sPsatAttestationData } from './attestation/node/k8s-psat.ts';

export interface AgentDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Log 'agent stopped' when the agent stops on its own (default true; off where the caller reports it). */
  readonly logStop?: boolean;
}

export interface RunningAgent {
  readonly socketPath: string;
  /** Port of the Prometheus endpoint, when the config has one. */
  readonly metricsPort?: number;
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

/** A data dir that exists but cannot be used: which file and why. */
interface CorruptData { readonly file: string; readonly reason: string }

type Loaded = { creds: AgentCredentials; roots: Uint8Array[] } | CorruptData | undefined;

function parseCert(b64: unknown, what: string): Uint8Array {
  if (typeof b64 !== 'string' || b64 === '') throw new Error(`${what} is not a base64 string`);
  const der = Buffer.from(b64, 'base64');
  try {
    new crypto.X509Certificate(der);
  } catch {
    throw new Error(`${what} is not an X.509 certificate`);
  }
  return new Uint8Array(der);
}

/**
 * Reads the stored agent SVID, key and bundle. Every part is checked (certificates parse, the
 * key is the SVID's key, the SPIFFE ID is the one in the certificate) so that a damaged or
 * tampered data dir is reported, never used.
 */
function loadData(dir: string, trustDomain: string): Loaded {
  const dataFile = path.join(dir, 'agent-data.json');
  const keyFile = path.join(dir, 'agent-svid.key');
  if (!fs.existsSync(dataFile)) return undefined;
  let d: AgentData;
  let chain: Uint8Array[];
  let roots: Uint8Array[];
  let leaf: crypto.X509Certificate;
  try {
    d = JSON.parse(fs.readFileSync(dataFile, 'utf8')) as AgentData;
    if (typeof d !== 'object' || d === null) throw new Error('not a JSON object');
    if (!Array.isArray(d.svid) || d.svid.length === 0) throw new Error('"svid" is missing or empty');
    if (!Array.isArray(d.bundle) || d.bundle.length === 0) throw new Error('"bundle" is missing or empty');
    chain = d.svid.map((b, i) => parseCert(b, `svid[${i}]`));
    roots = d.bundle.map((b, i) => parseCert(b, `bundle[${i}]`));
    leaf = new crypto.X509Certificate(Buffer.from(chain[0] ?? new Uint8Array()));
  } catch (err) {
    return { file: dataFile, reason: err instanceof Error ? err.message : String(err) };
  }
  const ids = (leaf.subjectAltName ?? '').split(',').map((x) => x.trim()).filter((x) => x.startsWith('URI:')).map((x) => x.slice(4));
  const id = ids.length === 1 && ids[0] !== undefined ? SpiffeId.tryParse(ids[0]) : undefined;
  if (id === undefined || id.isTrustDomainId() || id.trustDomain.name !== trustDomain) {
    return { file: dataFile, reason: `svid[0] is not an agent SVID of trust domain ${trustDomain}` };
  }
  let key: Buffer;
  try {
    key = fs.readFileSync(keyFile);
    const priv = crypto.createPrivateKey({ key, format: 'der', type: 'pkcs8' });
    if (!leaf.checkPrivateKey(priv)) throw new Error('the key does not belong to the stored agent SVID');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { file: keyFile, reason: /does not belong/.test(reason) ? reason : `cannot read a PKCS#8 private key: ${reason}` };
  }
  return {
    creds: { chain, keyDer: new Uint8Array(key), id: id.toString(), expiresAt: Date.parse(leaf.validTo), reattestable: d.reattestable === true },
    roots,
  };
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

/** Deletes the stored agent SVID and key: the next start attests again. */
export function deleteAgentData(dir: string): void {
  for (const f of ['agent-data.json', 'agent-svid.key']) fs.rmSync(path.join(dir, f), { force: true });
}

/** The SPIFFE ID of the agent SVID stored in `dir` (undefined when none, or unreadable). */
export function storedAgentId(dir: string): string | undefined {
  try {
    const d = JSON.parse(fs.readFileSync(path.join(dir, 'agent-data.json'), 'utf8')) as Partial<AgentData>;
    return typeof d.id === 'string' && d.id !== '' ? d.id : undefined;
  } catch {
    return undefined;
  }
}

async function bootstrapRoots(c: AgentConfig): Promise<Uint8Array[]> {
  let text: string | undefined = c.trustBundle;
  if (text === undefined && c.trustBundlePath !== undefined) {
    try {
      text = fs.readFileSync(c.trustBundlePath, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      throw new ZtwimError(
        'ERR_CONFIG',
        `cannot read the bootstrap trust bundle ${c.trustBundlePath} (agent.trust_bundle_path or -trustBundle): ${why}; write the server's bundle there (ztwim server bundle show > FILE), or set trust_bundle_url or insecure_bootstrap`,
        { cause: e, fields: { trust_bundle_path: c.trustBundlePath } },
      );
    }
  }
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
  if (c.nodeAttestor.type === 'k8s_psat') return k8sPsatAttestationData(c.nodeAttestor);
  return c.joinToken === undefined ? undefined : { type: 'join_token', token: c.joinToken };
}

/** Whether the agent stopped because the server no longer knows it (evicted, or another datastore). */
export function isAgentNotAttested(e: unknown): boolean {
  return isZtwimError(e, 'ERR_PERMISSION_DENIED') && e.fields['agent_state'] === 'not_attested';
}

function rootsOf(b: Bundle): Uint8Array[] { return b.x509Authorities.map((a) => a.asn1); }

export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<RunningAgent> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? createLogger({ level: config.logLevel, name: 'agent', ...(config.logFormat === undefined ? {} : { format: config.logFormat }) });
  for (const warning of config.warnings ?? []) log.warn({ warning }, 'Configuration not fully applied');
  const persist = config.keyManager === 'disk';
  // One agent per data dir: a second would overwrite its SVID and key.
  const lock = lockDataDir(config.dataDir, { what: 'the agent', moveWith: 'data_dir (agent block)', file: 'ztwim-agent.lock' });
  try {
    return await runAgent(config, clock, log, persist, lock, deps.logStop ?? true);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function runAgent(config: AgentConfig, clock: Clock, log: Logger, persist: boolean, lock: DataDirLock, logStop: boolean): Promise<RunningAgent> {
  const opts = { host: config.serverAddress, port: config.serverPort, trustDomain: config.trustDomain };
  // Built first: its token and kubelet CA are read now, and a missing one stops the start here.
  const k8s = config.k8sAttestor === undefined ? undefined : new K8sWorkloadAttestor(config.k8sAttestor, { clock, logger: log });
  try {
    return await runAgentWith(config, clock, log, persist, lock, logStop, opts, k8s);
  } catch (e) {
    k8s?.close();
    throw e;
  }
}

async function runAgentWith(
  config: AgentConfig,
  clock: Clock,
  log: Logger,
  persist: boolean,
  lock: DataDirLock,
  logStop: boolean,
  opts: { host: string; port: number; trustDomain: string },
  k8s: K8sWorkloadAttestor | undefined,
): Promise<RunningAgent> {
  const loaded = persist ? loadData(config.dataDir, config.trustDomain) : undefined;
  let stored = loaded !== undefined && 'creds' in loaded ? loaded : undefined;
  if (loaded !== undefined && !('creds' in loaded)) {
    // As spire-agent, a data dir that cannot be read is never used. Re-attest when we can
    // (a join token, x509pop or k8s_psat); otherwise refuse to start, naming the file.
    if (attestationData(config) === undefined) {
      throw new ZtwimError('ERR_CONFIG', `agent data file ${loaded.file} is corrupted (${loaded.reason}); remove it and start the agent with a new join token`, {
        fields: { file: loaded.file, reason: loaded.reason },
      });
    }
    log.error({ file: loaded.file, reason: loaded.reason }, 'agent data dir is corrupted; ignoring it and re-attesting');
  }
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
    if (data === undefined) {
      throw new ZtwimError('ERR_CONFIG', `no agent SVID stored in ${config.dataDir} and no join token, x509pop or k8s_psat NodeAttestor configured to attest`);
    }
    roots = await bootstrapRoots(config);
    if (roots.length === 0 && !config.insecureBootstrap) throw new ZtwimError('ERR_CONFIG', 'trust bundle is required (trust_bundle_path, trust_bundle_url or insecure_bootstrap)');
    const boot = new ServerClient({ ...opts, roots, insecure: config.insecureBootstrap });
    try {
      creds = await attestAgent(boot, data);
    } catch (e) {
      const reason = e instanceof ConnectError ? `${Code[e.code] ?? e.code}: ${e.rawMessage}` : e instanceof Error ? e.message : String(e);
      throw new ZtwimError('ERR_UNAVAILABLE', `node attestation failed: ${reason}`, { cause: e, fields: { reason } });
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
  // Metrics only where the config asks for them (telemetry { Prometheus { ... } }), as spire-agent.
  const metrics = config.metrics === undefined ? undefined : new Metrics({ prefix: 'ztwim_agent' });
  let metricsServer: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  if (metrics !== undefined && config.metrics !== undefined) {
    metrics.entries.set(cache.entries.size);
    try {
      metricsServer = await serveMetrics(metrics.registry, config.metrics.host, config.metrics.port);
    } catch (e) {
      client.close();
      throw new ZtwimError('ERR_CONFIG', `agent metrics cannot listen on ${config.metrics.host}:${config.metrics.port} (telemetry.Prometheus): ${(e as Error).message}`, { cause: e });
    }
  }
  const unix = new UnixWorkloadAttestor({ ...config.unixAttestor, logger: log });
  const tracker = new PeerTracker({ attestors: k8s === undefined ? [unix] : [unix, k8s], logger: log });
  let endpoint: Awaited<ReturnType<typeof startWorkloadEndpoint>>;
  try {
    endpoint = await startWorkloadEndpoint({ socketPath: config.socketPath, cache, attestor: tracker, logger: log });
  } catch (e) {
    client.close();
    await metricsServer?.close();
    throw listenError(e, { name: 'Workload API socket', address: config.socketPath, at: { path: config.socketPath }, moveWith: 'agent.socket_path in the config or -socketPath' });
  }

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
      if (persist) deleteAgentData(config.dataDir);
      return new ZtwimError('ERR_PERMISSION_DENIED', 'agent is banned', { cause: e, fields: { agent_state: 'banned' } });
    }
    if (reason === PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED) {
      if (persist) deleteAgentData(config.dataDir);
      return new ZtwimError('ERR_PERMISSION_DENIED', 'agent is no longer attested', { cause: e, fields: { agent_state: 'not_attested' } });
    }
    return new ZtwimError('ERR_PERMISSION_DENIED', 'agent permission denied', { cause: e, fields: { reason: e.rawMessage } });
  };
  // A ztwim server hints when this agent's entries change: the loop then syncs at once instead of
  // at the end of its interval (client/hints.ts; a spire-server has no such service).
  let wake = new AbortController();
  let hinted = false;
  const hints = watchHints({
    client: () => client,
    clock,
    log,
    signal: stop.signal,
    onHint: () => { hinted = true; wake.abort(); },
  });
  const loop = async (): Promise<void> => {
    for (;;) {
      try {
        await cache.sync(stop.signal);
        metrics?.entries.set(cache.entries.size);
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
      if (!hinted) {
        // Woken by a hint or by stop (no AbortSignal.any on the long-lived stop signal: each
        // composite would stay registered on it for the agent's whole life).
        const w = wake;
        const onStop = (): void => w.abort();
        stop.signal.addEventListener('abort', onStop, { once: true });
        try {
          await clock.sleep(cache.nextDelayMs(), w.signal);
        } catch {
          /* woken */
        } finally {
          stop.signal.removeEventListener('abort', onStop);
        }
        if (stop.signal.aborted) return;
      }
      hinted = false;
      wake = new AbortController();
    }
  };
  let closed = false;
  const done = loop().finally(async () => {
    stop.abort();
    await hints;
    client.close();
    await endpoint.close({ graceMs: 1000 });
    await metricsServer?.close();
    k8s?.close();
    lock.release();
  }).catch((e: unknown) => {
    if (!closed && logStop) log.error({ err: e }, 'agent stopped');
    throw e;
  });
  done.catch(() => undefined);
  return {
    socketPath: config.socketPath,
    ...(metricsServer === undefined ? {} : { metricsPort: metricsServer.port }),
    agentId: creds.id,
    done,
    async close() {
      closed = true;
      stop.abort();
      await done.catch(() => undefined);
    },
  };
}
