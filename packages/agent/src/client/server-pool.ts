// The agent's connection to its servers, with fail-over. The configured targets (SPIRE's
// server_address, or ztwim's server_addresses) are resolved to addresses (a DNS name may have
// several A/AAAA records); the agent keeps one connection, to one of them, and when a call on it
// fails because the server is gone (Unavailable, the connection reset) it moves to the next
// address (re-resolving the names) and runs the call again there, within the call's deadline.
//
// SPIRE's agent dials `dns:///host:port` with gRPC's round_robin balancer and drops the connection
// after a failed call (pkg/agent/client), so the call that met the dead server fails and only the
// next one goes elsewhere. Here the failed call itself is retried on another server: a workload
// asking for a new JWT-SVID while a server dies gets its token from another one. Written here
// rather than with a gRPC balancer because the transport (connect-node's session manager) has one
// connection per base URL and no balancer; fail-over is a loop around the call.
//
// A server that hangs (stopped, or a peer that accepts and never answers) does not close its
// connection: the connection's HTTP/2 keepalive (server-client.ts) fails the calls open on it
// Unavailable, which fails over like a dead server.
//
// Rebalancing: after a fail-over the agent is no longer where its random start put it (every
// agent of a dead server moved to the same next one). Until it has seen every address serve
// again, it checks them every `rebalanceIntervalMs` (jittered); each time the set of servers
// that answer differs from the one it last picked among, it picks one of them uniformly at random
// and moves there (on a connection already proven by the check; calls under way on the old one
// finish there). Once every address answered, it stops until the next fail-over.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Code } from '@connectrpc/connect';
import { ZtwimError, asError, type Clock, type Logger } from '@ztwim/core';
import { formatTarget, type ServerTarget } from '../config/server-targets.ts';
import { CALL_TIMEOUT_MS, type ServerClient } from './server-client.ts';

/** What a call gets for each attempt: the deadline left and the caller's cancellation. */
export interface AttemptOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** How a call may be run. */
export interface CallPolicy {
  /** Deadline of the whole call, attempts on every server included (default CALL_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Cancels the call (the caller went away, the agent stops). */
  readonly signal?: AbortSignal;
  /** On a connection without the agent's certificate, made for this attempt and closed after it (node attestation). */
  readonly bootstrap?: boolean;
}

/** Runs calls against the agent's server(s). */
export interface ServerCalls {
  call<T>(fn: (client: ServerClient, o: AttemptOptions) => Promise<T>, policy?: CallPolicy): Promise<T>;
}

/**
 * One server, no fail-over: every call runs once on `current()` (or, for bootstrap calls, on a
 * connection from `bootstrap()` that is closed after it). For callers and tests with one client.
 */
export function singleServer(current: () => ServerClient, bootstrap?: () => ServerClient): ServerCalls {
  return {
    async call(fn, policy = {}) {
      const o: AttemptOptions = { timeoutMs: policy.timeoutMs ?? CALL_TIMEOUT_MS, ...(policy.signal === undefined ? {} : { signal: policy.signal }) };
      if (policy.bootstrap !== true || bootstrap === undefined) return await fn(current(), o);
      const c = bootstrap();
      try {
        return await fn(c, o);
      } finally {
        c.close();
      }
    },
  };
}

/** Node error codes of a connection that broke under a call (the server process died or reset it). */
const CONNECTION_LOST = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * Whether a failed call is worth running again on another server: the server said Unavailable
 * (it is stopping, or its datastore is away), the connection could not be made, or it broke under
 * the call (Aborted, a reset, streams canceled under it). A deadline that ran out and every answer
 * of a live server about the request itself (PermissionDenied, InvalidArgument, NotFound, ...)
 * are not; nor is anything once the caller canceled (checked by the callers).
 */
export function isFailoverError(e: unknown): boolean {
  if (!(e instanceof ZtwimError)) return false;
  const grpc = e.fields['grpc_code'];
  // Canceled that the caller did not ask for (call() and the hints watch look at the caller's
  // signal first): node resets the streams of a connection that closed under them with CANCEL
  // ("http/2 stream closed with error code 0x8"), as a server that shuts down does.
  if (grpc === Code.Unavailable || grpc === Code.Aborted || grpc === Code.Canceled) return true;
  if (grpc !== Code.Internal && grpc !== Code.Unknown) return false;
  // connect-node reports a connection torn down under a stream as Internal/Unknown with the node
  // error as its cause: only those count.
  for (let cur: unknown = e.cause, depth = 0; cur instanceof Error && depth < 8; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_LOST.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** Resolves a host name to IP addresses (getaddrinfo, /etc/hosts included); an IP literal is itself. */
export type ResolveHost = (host: string) => Promise<string[]>;

export const resolveHost: ResolveHost = async (host) => {
  if (isIP(host) !== 0) return [host];
  return (await lookup(host, { all: true })).map((a) => a.address);
};

export interface ServerPoolOptions {
  readonly targets: readonly ServerTarget[];
  /** A connection to one resolved address: with the agent's current SVID, or without (`bootstrap`). */
  readonly connect: (address: ServerTarget, bootstrap: boolean) => ServerClient;
  readonly clock: Clock;
  readonly log: Logger;
  readonly resolve?: ResolveHost;
  /** In [0, 1): which address an agent starts on, so a fleet of agents spreads over the servers. */
  readonly random?: () => number;
  /** Wait after a call found every address down, doubling per further round (default 200 ms, at most 5 s). */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Rounds over every address one call makes before it gives up (default 2), within its deadline. */
  readonly maxRounds?: number;
  /** How long an address that failed is passed over when another one is left (default 10 s). */
  readonly quarantineMs?: number;
  /** Called at each fail-over (metrics). */
  readonly onFailover?: (from: string, to: string) => void;
  /**
   * Mean time between two rebalancing checks after a fail-over (each one drawn uniformly from ½ to
   * 1½ of it); 0 or unset: the agent stays where it failed over to.
   */
  readonly rebalanceIntervalMs?: number;
  /** The check that a server serves, run on a fresh connection to it (rebalancing); it throws when not. */
  readonly probe?: (client: ServerClient, o: AttemptOptions) => Promise<unknown>;
  /** Deadline of one probe (default 10 s). */
  readonly probeTimeoutMs?: number;
  /** Called when a rebalancing check moved the agent (metrics). */
  readonly onRebalance?: (from: string, to: string) => void;
}

/** What one rebalancing check found and did (for tests and logs). */
export interface RebalanceResult {
  /** The addresses that answered (the one in use included), as `host:port`. */
  readonly serving: readonly string[];
  /** The addresses that did not. */
  readonly down: readonly string[];
  /** Where the agent moved, when it did. */
  readonly movedTo?: string;
  /** Every address answered: no further check until the next fail-over. */
  readonly settled: boolean;
}

interface Connection {
  readonly name: string;
  readonly client: ServerClient;
}

/** A server connection that fails over between the resolved addresses of the configured targets. */
export class ServerPool implements ServerCalls {
  readonly #o: ServerPoolOptions;
  readonly #resolve: ResolveHost;
  #addresses: ServerTarget[] = [];
  /** Index into #addresses of the address in use. */
  #index = 0;
  #current: Connection | undefined;
  /** The addresses need resolving again before the next connection (start, a fail-over). */
  #stale = true;
  #resolving: Promise<void> | undefined;
  /** Address name -> clock time until which it is passed over. */
  readonly #down = new Map<string, number>();
  /** Connections replaced by a reconnect, closed once the calls on them had their deadline. */
  readonly #retired = new Set<ServerClient>();
  #failovers = 0;
  #rebalances = 0;
  /** Bumped when the connection in use is replaced (fail-over, reconnect, rebalance): a check that ran meanwhile is stale. */
  #generation = 0;
  /** The pending rebalancing check, when one is scheduled. */
  #rebalanceTimer: (() => void) | undefined;
  /** The sorted set of addresses the last rebalancing pick was made among. */
  #pickedAmong: string | undefined;
  #closed = false;

  constructor(o: ServerPoolOptions) {
    if (o.targets.length === 0) throw new ZtwimError('ERR_CONFIG', 'no server address configured (server_address or server_addresses)');
    this.#o = o;
    this.#resolve = o.resolve ?? resolveHost;
  }

  /** `host:port` of the server the agent is connected to (or will connect to next). */
  get serverAddress(): string | undefined {
    if (this.#current !== undefined) return this.#current.name;
    const a = this.#addresses[this.#index];
    return a === undefined ? undefined : formatTarget(a);
  }

  /** Fail-overs since start. */
  get failovers(): number {
    return this.#failovers;
  }

  /** Moves made by rebalancing since start. */
  get rebalances(): number {
    return this.#rebalances;
  }

  /** Whether a rebalancing check is scheduled (the agent failed over and has not seen every server back yet). */
  get rebalancing(): boolean {
    return this.#rebalanceTimer !== undefined;
  }

  /** The resolved addresses, as `host:port`. */
  get addresses(): string[] {
    return this.#addresses.map(formatTarget);
  }

  /**
   * Runs `fn` on the current server; when it fails with a fail-over error (isFailoverError) moves to
   * the next address and runs it again there, until it succeeds, the deadline passes, or every
   * address failed `maxRounds` times (with a backoff between rounds). The last error is thrown.
   */
  async call<T>(fn: (client: ServerClient, o: AttemptOptions) => Promise<T>, policy: CallPolicy = {}): Promise<T> {
    const clock = this.#o.clock;
    const deadline = clock.nowMs() + (policy.timeoutMs ?? CALL_TIMEOUT_MS);
    const maxRounds = this.#o.maxRounds ?? 2;
    const tried = new Set<string>();
    let rounds = 0;
    for (;;) {
      const conn = await this.#connection(policy.bootstrap === true);
      tried.add(conn.name);
      const o: AttemptOptions = { timeoutMs: Math.max(1, deadline - clock.nowMs()), ...(policy.signal === undefined ? {} : { signal: policy.signal }) };
      try {
        return await fn(conn.client, o);
      } catch (e) {
        if (!isFailoverError(e) || policy.signal?.aborted === true || this.#closed) throw e;
        this.#failed(conn, e);
        if (this.#addresses.every((a) => tried.has(formatTarget(a)))) {
          rounds++;
          if (rounds >= maxRounds) throw e;
          tried.clear();
          const base = this.#o.backoffMs ?? 200;
          const wait = Math.min(this.#o.maxBackoffMs ?? 5000, base * 2 ** (rounds - 1), deadline - clock.nowMs());
          if (wait > 0) await clock.sleep(wait, policy.signal);
          this.#stale = true;
        }
        if (clock.nowMs() >= deadline) throw e;
      } finally {
        if (policy.bootstrap === true) conn.client.close();
      }
    }
  }

  /**
   * Tells the pool a call on `client` failed (a stream the caller runs itself, e.g. the hints
   * watch): a fail-over error moves the agent to the next server. Returns whether it did.
   */
  reportFailure(client: ServerClient, e: unknown): boolean {
    const conn = this.#current;
    if (conn === undefined || conn.client !== client || !isFailoverError(e)) return false;
    this.#failed(conn, e);
    return true;
  }

  /** The connection in use, made when there is none (for a stream the caller runs itself). */
  async client(): Promise<ServerClient> {
    return (await this.#connection(false)).client;
  }

  /**
   * New connections from now on (the agent's SVID or the trust bundle changed), to the same
   * server. The calls under way on the old connection finish, within their deadline, before it
   * closes: closing it would fail them.
   */
  reconnect(): void {
    const old = this.#current;
    this.#current = undefined;
    this.#generation++;
    if (old !== undefined) this.#retire(old.client);
  }

  /**
   * One rebalancing check (run by the timer after a fail-over; callable directly): resolves the
   * names again, probes every address but the one in use on a fresh connection, and when the set
   * that answered differs from the one the last pick was made among, picks one of them uniformly
   * at random and moves there. Calls under way keep their connection until they finish.
   */
  async rebalance(): Promise<RebalanceResult> {
    const generation = this.#generation;
    this.#stale = true;
    await this.#refresh();
    const inUse = this.#current;
    const probes = await Promise.all(
      this.#addresses.filter((a) => formatTarget(a) !== inUse?.name).map(async (a) => ({ name: formatTarget(a), address: a, ...(await this.#probe(a)) })),
    );
    const now = this.#o.clock.nowMs();
    const down: string[] = [];
    for (const p of probes) {
      if (p.client !== undefined) this.#down.delete(p.name);
      else {
        down.push(p.name);
        this.#down.set(p.name, now + (this.#o.quarantineMs ?? 10_000));
      }
    }
    // In the order of the addresses (the one in use included): the pick below is by position.
    const serving = this.#addresses.map(formatTarget).filter((n) => n === inUse?.name || probes.some((p) => p.name === n && p.client !== undefined));
    const settled = down.length === 0;
    const key = [...serving].sort().join(',');
    let movedTo: string | undefined;
    // A fail-over, a reconnect or another check replaced the connection while the probes ran: this
    // check saw a state that is gone (and its connections may carry an old SVID).
    const stale = this.#closed || generation !== this.#generation || inUse !== this.#current;
    if (!stale && serving.length > 0 && key !== this.#pickedAmong) {
      this.#pickedAmong = key;
      const pick = serving[Math.floor((this.#o.random ?? Math.random)() * serving.length) % serving.length];
      const chosen = probes.find((p) => p.name === pick);
      if (pick !== undefined && chosen?.client !== undefined) {
        const from = inUse?.name ?? this.serverAddress ?? '';
        this.#current = { name: chosen.name, client: chosen.client };
        this.#index = this.#addresses.findIndex((a) => formatTarget(a) === chosen.name);
        this.#generation++;
        if (inUse !== undefined) this.#retire(inUse.client);
        this.#rebalances++;
        movedTo = chosen.name;
        this.#o.log.info({ from, server_address: chosen.name, rebalances: this.#rebalances, servers: serving.length }, 'Rebalanced the server connection');
        this.#o.onRebalance?.(from, chosen.name);
      }
    }
    for (const p of probes) if (p.client !== undefined && p.name !== movedTo) p.client.close();
    return { serving, down, ...(movedTo === undefined ? {} : { movedTo }), settled: settled && !stale };
  }

  /** A fresh connection to `a` that passed the probe, or none. */
  async #probe(a: ServerTarget): Promise<{ client?: ServerClient }> {
    const probe = this.#o.probe;
    if (probe === undefined) return {};
    let client: ServerClient | undefined;
    try {
      client = this.#o.connect(a, false);
      await probe(client, { timeoutMs: this.#o.probeTimeoutMs ?? 10_000 });
      return { client };
    } catch (e) {
      client?.close();
      this.#o.log.debug({ server_address: formatTarget(a), err: asError(e) }, 'Server does not answer the rebalancing check');
      return {};
    }
  }

  /** Schedules the next rebalancing check (after a fail-over, or after a check that found a server down). */
  #scheduleRebalance(): void {
    const mean = this.#o.rebalanceIntervalMs ?? 0;
    if (mean <= 0 || this.#o.probe === undefined || this.#closed || this.#rebalanceTimer !== undefined) return;
    // Jittered over [½, 1½) of the interval, so the agents of a fleet that failed over together
    // do not all check and move at once.
    const delay = mean * (0.5 + (this.#o.random ?? Math.random)());
    this.#rebalanceTimer = this.#o.clock.setTimer(delay, () => {
      void this.#runRebalance();
    });
  }

  async #runRebalance(): Promise<void> {
    try {
      const r = await this.rebalance();
      this.#rebalanceTimer = undefined;
      if (!r.settled) this.#scheduleRebalance();
    } catch (e) {
      // The names could not be resolved (and none were known): try again later.
      this.#rebalanceTimer = undefined;
      this.#o.log.warn({ err: asError(e) }, 'Rebalancing check failed');
      this.#scheduleRebalance();
    }
  }

  close(): void {
    this.#closed = true;
    this.#rebalanceTimer?.();
    this.#rebalanceTimer = undefined;
    this.#current?.client.close();
    this.#current = undefined;
    for (const c of this.#retired) c.close();
    this.#retired.clear();
  }

  #retire(client: ServerClient): void {
    this.#retired.add(client);
    this.#o.clock.setTimer(CALL_TIMEOUT_MS, () => {
      if (this.#retired.delete(client)) client.close();
    });
  }

  /** Moves off `conn`'s server when it is still the one in use. */
  #failed(conn: Connection, e: unknown): void {
    const now = this.#o.clock.nowMs();
    this.#down.set(conn.name, now + (this.#o.quarantineMs ?? 10_000));
    // Only a failure at the address in use moves the agent: the other calls that failed on the
    // same server at the same time find it moved already.
    if (this.serverAddress !== conn.name) return;
    const current = this.#current;
    if (current !== undefined) {
      this.#current = undefined;
      this.#retire(current.client);
    }
    this.#index = this.#next(conn.name, now);
    this.#stale = true;
    this.#generation++;
    this.#failovers++;
    // The servers this agent spread over changed: check again until every one serves.
    this.#pickedAmong = undefined;
    this.#scheduleRebalance();
    const to = this.serverAddress ?? conn.name;
    this.#o.log.warn({ from: conn.name, server_address: to, failovers: this.#failovers, err: asError(e) }, 'Server unavailable; failing over');
    this.#o.onFailover?.(conn.name, to);
  }

  /** The index of the address after `name` that is not passed over (or simply the next one). */
  #next(name: string, now: number): number {
    const n = this.#addresses.length;
    const at = this.#addresses.findIndex((a) => formatTarget(a) === name);
    const from = at < 0 ? this.#index : at;
    for (let i = 1; i <= n; i++) {
      const j = (from + i) % n;
      const a = this.#addresses[j];
      if (a !== undefined && (this.#down.get(formatTarget(a)) ?? 0) <= now) return j;
    }
    return (from + 1) % Math.max(1, n);
  }

  async #connection(bootstrap: boolean): Promise<Connection> {
    if (this.#closed) throw new ZtwimError('ERR_UNAVAILABLE', 'the agent is stopping');
    if (!bootstrap && this.#current !== undefined) return this.#current;
    if (this.#stale) await this.#refresh();
    const address = this.#addresses[this.#index];
    if (address === undefined) throw new ZtwimError('ERR_UNAVAILABLE', 'no server address resolved');
    const conn: Connection = { name: formatTarget(address), client: this.#o.connect(address, bootstrap) };
    if (bootstrap) return conn;
    if (this.#current !== undefined) {
      // Another call made one while this one resolved: use that.
      conn.client.close();
      return this.#current;
    }
    this.#current = conn;
    return conn;
  }

  /** Resolves the targets again (concurrent callers share one resolution). */
  async #refresh(): Promise<void> {
    this.#resolving ??= this.#resolveAll().finally(() => {
      this.#resolving = undefined;
    });
    await this.#resolving;
  }

  async #resolveAll(): Promise<void> {
    const first = this.#addresses.length === 0;
    const wanted = this.serverAddress;
    const out: ServerTarget[] = [];
    const problems: string[] = [];
    for (const t of this.#o.targets) {
      try {
        for (const ip of await this.#resolve(t.host)) {
          const a = { host: ip, port: t.port };
          if (!out.some((o) => o.host === a.host && o.port === a.port)) out.push(a);
        }
      } catch (e) {
        problems.push(`${t.host}: ${asError(e).message}`);
      }
    }
    if (out.length === 0) {
      // Keep what was resolved before: a DNS outage is not a reason to forget the servers.
      if (this.#addresses.length > 0) {
        this.#o.log.warn({ reason: problems.join('; ') }, 'Cannot resolve the server addresses; keeping the previous ones');
        this.#stale = false;
        return;
      }
      throw new ZtwimError('ERR_UNAVAILABLE', `cannot resolve the server address: ${problems.join('; ') || 'no address'}`, {
        fields: { reason: problems.join('; ') },
      });
    }
    this.#addresses = out;
    this.#stale = false;
    if (first) {
      this.#index = Math.floor((this.#o.random ?? Math.random)() * out.length) % out.length;
      return;
    }
    // Stay on the address chosen before the re-resolution when it is still there.
    const at = wanted === undefined ? -1 : out.findIndex((a) => formatTarget(a) === wanted);
    this.#index = at >= 0 ? at : this.#index % out.length;
  }
}
