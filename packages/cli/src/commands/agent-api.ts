import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { derToPem, WorkloadApiClient, type X509Svid } from '@ztwim/spiffe';
import { CommandError, type Command } from '../command.ts';
import { println, type Env } from '../env.ts';
import type { Flags, FlagSpecs } from '../flags.ts';
import { grpcErrorText } from '../printer/go-format.ts';

/** spire-agent's default Workload API socket; SPIFFE_ENDPOINT_SOCKET wins when set and -socketPath is not. */
export const DEFAULT_AGENT_SOCKET = '/tmp/spire-agent/public/api.sock';

const COMMON: FlagSpecs = {
  socketPath: { kind: 'string', usage: 'Path to the SPIFFE Workload API socket', default: DEFAULT_AGENT_SOCKET, arg: 'PATH' },
  timeout: { kind: 'duration', usage: 'Time to wait for a response', default: 5, arg: 'DURATION' },
  output: { kind: 'string', usage: 'Desired output format (pretty, json)', default: 'pretty', arg: 'FORMAT' },
};

function address(f: Flags, env: Env): string {
  if (!f.isSet('socketPath') && env.vars.SPIFFE_ENDPOINT_SOCKET !== undefined && env.vars.SPIFFE_ENDPOINT_SOCKET !== '') {
    return env.vars.SPIFFE_ENDPOINT_SOCKET;
  }
  return `unix://${f.string('socketPath')}`;
}

async function withClient<T>(f: Flags, env: Env, fn: (c: WorkloadApiClient, signal: AbortSignal) => Promise<T>): Promise<T> {
  const timeout = AbortSignal.timeout(Math.max(1, f.duration('timeout') * 1000));
  const signal = AbortSignal.any([timeout, env.signal]);
  const client = await WorkloadApiClient.connect({ address: address(f, env), signal });
  try {
    return await fn(client, signal);
  } catch (e) {
    if (timeout.aborted) throw new CommandError(`rpc error: code = DeadlineExceeded desc = context deadline exceeded`);
    const grpcMessage = (e as { grpcMessage?: unknown }).grpcMessage;
    const grpcCode = (e as { grpcCode?: unknown }).grpcCode;
    // as spire-agent's `api fetch` prints grpc-go's error: the code by name (`code = PermissionDenied`)
    if (typeof grpcMessage === 'string' && typeof grpcCode === 'number') throw new CommandError(grpcErrorText(grpcCode, grpcMessage));
    throw e;
  } finally {
    client.close();
  }
}

/** Go's time.Time.String() in UTC: `2026-11-23 11:20:03 +0000 UTC`. */
export function goTime(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

function printSvid(env: Env, svid: X509Svid, bundleDers: readonly Uint8Array[]): void {
  println(env.stdout);
  println(env.stdout, `SPIFFE ID:\t\t${svid.id.toString()}`);
  if (svid.hint !== undefined && svid.hint !== '') println(env.stdout, `Hint:\t\t\t${svid.hint}`);
  const [leaf, ...inters] = svid.certificates.map((d) => new X509Certificate(d));
  if (leaf !== undefined) {
    println(env.stdout, `SVID Valid After:\t${goTime(new Date(leaf.validFrom))}`);
    println(env.stdout, `SVID Valid Until:\t${goTime(new Date(leaf.validTo))}`);
  }
  inters.forEach((c, i) => {
    println(env.stdout, `Intermediate #${i + 1} Valid After:\t${goTime(new Date(c.validFrom))}`);
    println(env.stdout, `Intermediate #${i + 1} Valid Until:\t${goTime(new Date(c.validTo))}`);
  });
  bundleDers.forEach((d, i) => {
    const c = new X509Certificate(d);
    println(env.stdout, `CA #${i + 1} Valid After:\t${goTime(new Date(c.validFrom))}`);
    println(env.stdout, `CA #${i + 1} Valid Until:\t${goTime(new Date(c.validTo))}`);
  });
}

/**
 * The response's federated bundles (SPIRE's X509SVIDResponse.federated_bundles: the bundles of
 * trust domains other than the SVIDs' own), keyed `spiffe://<td>` and sorted so that files and
 * lines come out in the same order every time (spire-agent iterates a Go map).
 */
function federatedBundles(ctx: {
  svids: readonly X509Svid[];
  bundles: { bundles(): Array<{ trustDomain: { name: string }; authorities(): Uint8Array[] }> };
}): Array<[string, Uint8Array[]]> {
  const own = new Set(ctx.svids.map((s) => s.id.trustDomain.name));
  return ctx.bundles
    .bundles()
    .filter((b) => !own.has(b.trustDomain.name))
    .map((b): [string, Uint8Array[]] => [`spiffe://${b.trustDomain.name}`, b.authorities()])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const fetchX509: Command = {
  name: 'x509',
  summary: 'Fetches X509-SVIDs from the Workload API',
  flags: {
    ...COMMON,
    write: { kind: 'string', usage: 'Directory to write the SVIDs, keys and bundles to', arg: 'DIR' },
    silent: { kind: 'bool', usage: 'Suppress stdout' },
  },
  async run(f, env) {
    const start = process.hrtime.bigint();
    const ctx = await withClient(f, env, (c, signal) => c.fetchX509Context({ signal }));
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (f.string('output') === 'json') {
      println(
        env.stdout,
        JSON.stringify({
          svids: ctx.svids.map((s) => ({
            spiffe_id: s.id.toString(),
            x509_svid: Buffer.concat(s.certificates).toString('base64'),
            x509_svid_key: Buffer.from(s.marshalRaw().privateKey).toString('base64'),
            bundle: Buffer.concat(ctx.bundles.getX509BundleForTrustDomain(s.id.trustDomain).authorities()).toString('base64'),
            hint: s.hint ?? '',
          })),
        }),
      );
      return;
    }
    if (!f.bool('silent')) {
      println(env.stdout, `Received ${ctx.svids.length} svid${ctx.svids.length === 1 ? '' : 's'} after ${ms.toFixed(6)}ms`);
      const federated = federatedBundles(ctx);
      for (const s of ctx.svids) {
        printSvid(env, s, ctx.bundles.getX509BundleForTrustDomain(s.id.trustDomain).authorities());
        for (const [td, ders] of federated) {
          ders.forEach((d, j) => {
            const c = new X509Certificate(d);
            println(env.stdout, `[${td}] CA #${j + 1} Valid After:\t${goTime(new Date(c.validFrom))}`);
            println(env.stdout, `[${td}] CA #${j + 1} Valid Until:\t${goTime(new Date(c.validTo))}`);
          });
        }
      }
      println(env.stdout);
    }
    const dir = f.optString('write');
    if (dir !== undefined) {
      mkdirSync(dir, { recursive: true });
      const federated = federatedBundles(ctx);
      ctx.svids.forEach((s, i) => {
        const m = s.marshal();
        const files: Array<[string, string, number, string]> = [
          [`svid.${i}.pem`, m.certificates, 0o644, `SVID #${i}`],
          [`svid.${i}.key`, m.privateKey, 0o600, `key #${i}`],
          [
            `bundle.${i}.pem`,
            ctx.bundles
              .getX509BundleForTrustDomain(s.id.trustDomain)
              .authorities()
              .map((d) => derToPem(d, 'CERTIFICATE'))
              .join(''),
            0o644,
            `bundle #${i}`,
          ],
          // spire-agent's federated_bundle.<i>.<j>.pem, one per federated trust domain.
          ...federated.map(([td, ders], j): [string, string, number, string] => [
            `federated_bundle.${i}.${j}.pem`,
            ders.map((d) => derToPem(d, 'CERTIFICATE')).join(''),
            0o644,
            `federated bundle #${j} for trust domain ${td}`,
          ]),
        ];
        for (const [name, body, mode, what] of files) {
          const p = join(dir, name);
          if (!f.bool('silent')) println(env.stdout, `Writing ${what} to file ${p}.`);
          writeFileSync(p, body, { mode });
        }
      });
    }
  },
};

const fetchJwt: Command = {
  name: 'jwt',
  summary: 'Fetches a JWT-SVID and the JWT bundles from the Workload API',
  flags: {
    ...COMMON,
    audience: { kind: 'string', usage: 'comma separated list of audience values', arg: 'AUD' },
    spiffeID: { kind: 'string', usage: 'SPIFFE ID subject (optional)', arg: 'ID' },
  },
  async run(f, env) {
    const [first, ...extra] = f
      .string('audience')
      .split(',')
      .filter((a) => a !== '');
    if (first === undefined) throw new CommandError('audience must be specified');
    const sub = f.optString('spiffeID');
    const params = { audience: first, extraAudiences: extra, ...(sub === undefined ? {} : { subject: sub }) };
    const [bundles, svids] = await withClient(
      f,
      env,
      async (c, signal) => [await c.fetchJwtBundles({ signal }), await c.fetchJwtSvids(params, { signal })] as const,
    );
    if (f.string('output') === 'json') {
      const bmap: Record<string, string> = {};
      for (const b of bundles.bundles()) bmap[b.trustDomain.idString()] = Buffer.from(b.marshal()).toString('base64');
      println(
        env.stdout,
        JSON.stringify([{ svids: svids.map((s) => ({ spiffe_id: s.id.toString(), svid: s.token, hint: s.hint ?? '' })) }, { bundles: bmap }]),
      );
      return;
    }
    for (const s of svids) {
      println(env.stdout, `token(${s.id.toString()}):`);
      println(env.stdout, `\t${s.token}`);
    }
    for (const b of bundles.bundles()) {
      println(env.stdout, `bundle(${b.trustDomain.idString()}):`);
      println(env.stdout, `\t${b.marshal()}`);
    }
  },
};

const fetchJwtBundle: Command = {
  name: 'jwt-bundle',
  summary: 'Fetches the JWT bundles from the Workload API',
  flags: COMMON,
  async run(f, env) {
    const bundles = await withClient(f, env, (c, signal) => c.fetchJwtBundles({ signal }));
    for (const b of bundles.bundles()) {
      println(env.stdout, `bundle(${b.trustDomain.idString()}):`);
      println(env.stdout, `\t${b.marshal()}`);
    }
  },
};

const validateJwt: Command = {
  name: 'jwt',
  summary: 'Validates a JWT-SVID through the Workload API',
  flags: {
    ...COMMON,
    audience: { kind: 'string', usage: 'The audience the token must carry', arg: 'AUD' },
    svid: { kind: 'string', usage: 'The JWT-SVID to validate', arg: 'TOKEN' },
  },
  async run(f, env) {
    if (f.string('audience') === '') throw new CommandError('audience must be specified');
    if (f.string('svid') === '') throw new CommandError('svid must be specified');
    try {
      const r = await withClient(f, env, (c, signal) => c.validateJwtSvid(f.string('svid'), f.string('audience'), { signal }));
      println(env.stdout, 'SVID is valid.');
      println(env.stdout, `SPIFFE ID : ${r.id.toString()}`);
      println(env.stdout, `Claims    : ${JSON.stringify(r.claims)}`);
    } catch (e) {
      if (e instanceof CommandError && /code = InvalidArgument /.test(e.message)) {
        println(env.stderr, `SVID is not valid: ${e.message.replace(/^rpc error: code = \S+ desc = /, '')}`);
        return 1;
      }
      throw e;
    }
    return 0;
  },
};

const watch: Command = {
  name: 'watch',
  summary: 'Watches X509-SVID updates from the Workload API',
  flags: { socketPath: COMMON.socketPath as FlagSpecs[string] },
  async run(f, env) {
    const client = await WorkloadApiClient.connect({ address: address(f, env), signal: env.signal });
    try {
      await client.watchX509Context(
        {
          onUpdate: (ctx) => {
            println(env.stdout, `Received ${ctx.svids.length} svid${ctx.svids.length === 1 ? '' : 's'}`);
            for (const s of ctx.svids) printSvid(env, s, ctx.bundles.getX509BundleForTrustDomain(s.id.trustDomain).authorities());
            println(env.stdout);
          },
          onError: (e) => println(env.stderr, `Error: ${e.message}`),
        },
        env.signal,
      );
    } finally {
      client.close();
    }
  },
};

/** `api` group (spire-agent api ...), also reachable as `ztwim api ...`. */
export const apiCommand: Command = {
  name: 'api',
  summary: 'Talk to the SPIFFE Workload API (fetch and validate SVIDs)',
  subcommands: [
    { ...fetchX509, name: 'fetch', summary: 'Fetch SVIDs or bundles (x509 when no kind is given)', subcommands: [fetchX509, fetchJwt, fetchJwtBundle] },
    { name: 'validate', summary: 'Validate SVIDs', subcommands: [validateJwt] },
    watch,
  ],
};
