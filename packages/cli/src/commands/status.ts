// `ztwim status`: is a `ztwim up` running in this directory, where does it serve, which agent,
// CA and entries it has, and the identity the caller would get. Exit 1 when nothing runs.
import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { dataDirHolder, wireSpiffeIdString } from '@ztwim/core';
import { SpiffeId } from '@ztwim/spiffe';
import { WorkloadApiClient } from '@ztwim/spiffe';
import type { Command } from '../command.ts';
import { println } from '../env.ts';
import { goTimeUtc } from '../printer/go-format.ts';
import { readUpState } from '../up/state-file.ts';
import { BundleService, EntryService } from '@ztwim/proto';
import { rpcErrorText, withServer } from './server/client.ts';

const TIMEOUT_MS = 5000;

function idToProto(id: string): { trustDomain: string; path: string } {
  const s = SpiffeId.parse(id);
  return { trustDomain: s.trustDomain.name, path: s.path };
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show whether ztwim up runs here: sockets, ports, agent, CA expiry, entries, your identity',
  flags: {
    dataDir: { kind: 'string', usage: 'The data directory of the ztwim up to look at', default: './.ztwim', arg: 'DIR' },
  },
  async run(f, env) {
    const dataDir = resolve(env.cwd, f.string('dataDir'));
    const holder = dataDirHolder(dataDir);
    const state = readUpState(dataDir);
    if (holder === undefined || state === undefined || state.pid !== holder) {
      println(
        env.stderr,
        holder === undefined
          ? `ztwim is not running: no process holds ${dataDir} (start it with: npx ztwim up${f.isSet('dataDir') ? ` -dataDir ${dataDir}` : ''})`
          : `ztwim up is not running in ${dataDir}: process ${holder} holds it but is not up yet (or is a server or agent run)`,
      );
      return 1;
    }
    const out = (k: string, v: string): void => println(env.stdout, `  ${(k === '' ? '' : `${k}:`).padEnd(22)}${v}`);
    println(env.stdout, `ztwim up is running (pid ${holder}), state in ${dataDir}`);
    out('trust domain', state.trustDomain);
    out('server API (admin)', state.serverSocketPath);
    out('server API (agents)', `127.0.0.1:${state.serverPort}`);
    out('Workload API', state.socketPath);
    if (state.oidcIssuer !== undefined) out('OIDC discovery', `${state.oidcIssuer}/.well-known/openid-configuration`);
    if (state.serverMetricsUrl !== undefined) out('server metrics', state.serverMetricsUrl);
    if (state.agentMetricsUrl !== undefined) out('agent metrics', state.agentMetricsUrl);
    if (state.consoleUrl !== undefined) out('web console', `${state.consoleUrl} (log in with the token up printed)`);
    out('datastore', state.datastore);
    let healthy = true;
    await withServer(state.serverSocketPath, async (conn) => {
      const opts = { timeoutMs: TIMEOUT_MS };
      try {
        const alias = await conn.client(EntryService).listEntries({ filter: { bySpiffeId: idToProto(state.nodeAlias) }, pageSize: 10 }, opts);
        const agents = alias.entries.map((e) => wireSpiffeIdString(e.parentId)).filter((a) => a !== '');
        out('agent ID', agents.length === 0 ? `none with the node alias ${state.nodeAlias}` : `${agents.join(', ')} (node alias ${state.nodeAlias})`);
        const bundle = await conn.client(BundleService).getBundle({}, opts);
        const expiries = bundle.x509Authorities.map((a) => Date.parse(new X509Certificate(a.asn1).validTo));
        if (expiries.length > 0) out('X.509 CA expires', goTimeUtc(Math.floor(Math.max(...expiries) / 1000)));
        out('entries', String((await conn.client(EntryService).countEntries({}, opts)).count));
      } catch (e) {
        healthy = false;
        out('server', `not answering: ${rpcErrorText(e, state.serverSocketPath)}`);
      }
    });
    const client = new WorkloadApiClient({ address: `unix://${state.socketPath}` });
    try {
      const svids = await client.fetchX509Svids({ signal: AbortSignal.any([env.signal, AbortSignal.timeout(TIMEOUT_MS)]) });
      svids.forEach((svid, i) => {
        const leaf = svid.certificates[0];
        out(
          i === 0 ? 'your identity' : '',
          `${svid.id.toString()}${leaf === undefined ? '' : ` (X509-SVID valid until ${goTimeUtc(Math.floor(Date.parse(new X509Certificate(leaf).validTo) / 1000))})`}`,
        );
      });
    } catch (e) {
      const code = (e as { grpcCode?: unknown }).grpcCode;
      if (code === 7)
        out(
          'your identity',
          `none: no entry matches uid ${process.getuid?.() ?? '?'} (npx ztwim server entry create ... -selector unix:uid:${process.getuid?.() ?? 0})`,
        );
      else {
        healthy = false;
        out('your identity', `unknown: the Workload API does not answer (${(e as Error).message})`);
      }
    } finally {
      client.close();
    }
    return healthy ? 0 : 1;
  },
};
