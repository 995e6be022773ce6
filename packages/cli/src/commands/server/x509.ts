// `ztwim server x509 mint`, compatible with spire-server's: a fresh P-256 key, a CSR with the
// URI SAN (and -dns SANs), MintX509SVID, then GetBundle for the root CAs.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CommandError, type Command } from '../../command.ts';
import type { Env } from '../../env.ts';
import { pemEncode } from '../../printer/bundle.ts';
import { goRfc3339Utc } from '../../printer/go-format.ts';
import { formatStructJson } from '../../printer/proto-json.ts';
import { wireSpiffeIdString } from '@ztwim/core';
import { BundleService, SvidService } from '@ztwim/proto';
import { createSvidCsr, type SvidCsr } from '@ztwim/spiffe';
import { withServer } from './client.ts';
import { checkedInt32, outputFormat, parseIdToProto, serverFlags } from './common.ts';
import { ttlToSeconds } from './jwt.ts';

function pemAll(type: string, ders: readonly Uint8Array[]): string {
  return ders.map((d) => pemEncode(type, d)).join('');
}

async function writeOut(env: Env, dir: string, svid: string, key: string, bundle: string): Promise<void> {
  const files: [string, string, number, string, string][] = [
    ['svid.pem', svid, 0o644, 'unable to write SVID', 'X509-SVID'],
    ['key.pem', key, 0o600, 'unable to write key', 'Private key'],
    ['bundle.pem', bundle, 0o644, 'unable to write bundle', 'Root CAs'],
  ];
  for (const [name, data, mode, err, label] of files) {
    const shown = join(dir, name);
    try {
      await writeFile(resolve(env.cwd, shown), data, { mode });
    } catch (e) {
      throw new CommandError(`${err}: ${(e as Error).message}`);
    }
    env.stdout.write(`${label} written to ${shown}\n`);
  }
}

const mintCommand: Command = {
  name: 'mint',
  summary: 'Mints an X509-SVID',
  flags: serverFlags({
    spiffeID: { kind: 'string', usage: 'SPIFFE ID of the X509-SVID', arg: 'string' },
    ttl: { kind: 'duration', usage: 'TTL of the X509-SVID', default: 0 },
    dns: { kind: 'list', usage: 'DNS name that will be included in SVID. Can be used more than once.', arg: 'value' },
    write: { kind: 'string', usage: 'Directory to write output to instead of stdout', arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const sid = flags.string('spiffeID');
    if (sid === '') throw new CommandError('spiffeID must be specified');
    let ttl: number;
    let uri: string;
    try {
      const id = parseIdToProto(sid);
      uri = wireSpiffeIdString(id);
      ttl = checkedInt32(ttlToSeconds(flags.duration('ttl')), 'TTL', 'time.Duration');
    } catch (e) {
      throw new CommandError((e as Error).message);
    }
    let minted: SvidCsr;
    try {
      minted = await createSvidCsr(uri, flags.list('dns'));
    } catch (e) {
      throw new CommandError(`unable to generate CSR: ${(e as Error).message}`);
    }
    await withServer(flags.string('socketPath'), async (conn) => {
      const resp = await conn.rpc(() => conn.client(SvidService).mintX509SVID({ csr: minted.csr, ttl }), 'unable to mint SVID: ');
      const chain = resp.svid?.certChain ?? [];
      if (chain.length === 0) throw new CommandError('server response missing SVID chain');
      const ca = await conn.rpc(() => conn.client(BundleService).getBundle({}), 'unable to get bundle: ');
      if (ca.x509Authorities.length === 0) throw new CommandError('server response missing X509 Authorities');
      const exp = Number(resp.svid?.expiresAt ?? 0n);
      if (exp * 1000 - Date.now() < flags.duration('ttl') * 1000) {
        env.stderr.write(`X509-SVID lifetime was capped shorter than specified ttl; expires "${goRfc3339Utc(exp)}"\n`);
      }
      const roots = ca.x509Authorities.map((a) => a.asn1);
      const dir = flags.string('write');
      if (dir === '') {
        if (format === 'json') {
          const b64 = (d: Uint8Array): string => Buffer.from(d).toString('base64');
          env.stdout.write(formatStructJson([{ x509_svid: chain.map(b64), private_key: b64(minted.pkcs8), root_cas: roots.map(b64) }]));
        } else {
          env.stdout.write(`X509-SVID:\n${pemAll('CERTIFICATE', chain)}\n`);
          env.stdout.write(`Private key:\n${pemEncode('PRIVATE KEY', minted.pkcs8)}\n`);
          env.stdout.write(`Root CAs:\n${pemAll('CERTIFICATE', roots)}\n`);
        }
        return;
      }
      await writeOut(env, dir, pemAll('CERTIFICATE', chain), pemEncode('PRIVATE KEY', minted.pkcs8), pemAll('CERTIFICATE', roots));
    });
  },
};

export const x509Command: Command = {
  name: 'x509',
  summary: 'Mint X509-SVIDs',
  subcommands: [mintCommand],
};
