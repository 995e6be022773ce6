// `ztwim server jwt mint`, compatible with spire-server's.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MintJWTSVIDResponseSchema, SvidService } from '@ztwim/proto';
import { CommandError, type Command } from '../../command.ts';
import { goRfc3339Utc } from '../../printer/go-format.ts';
import { withServer } from './client.ts';
import { checkedInt32, outputFormat, parseIdToProto, printProto, serverFlags } from './common.ts';

/** Go `(ttl + time.Second - 1) / time.Second` for a duration given in (fractional) seconds. */
export function ttlToSeconds(secs: number): number {
  const ns = Math.round(secs * 1e9);
  return Math.ceil(ns / 1e9);
}

function jwtExpiry(token: string): number {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('go-jose/go-jose: compact JWS format must have three parts');
  const claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as { exp?: unknown };
  if (typeof claims.exp !== 'number') throw new Error('no expiry claim');
  return claims.exp;
}

const mintCommand: Command = {
  name: 'mint',
  summary: 'Mints a JWT-SVID',
  flags: serverFlags({
    spiffeID: { kind: 'string', usage: 'SPIFFE ID of the JWT-SVID', arg: 'string' },
    ttl: { kind: 'duration', usage: 'TTL of the JWT-SVID', default: 0 },
    audience: { kind: 'list', usage: 'Audience claim that will be included in the SVID. Can be used more than once.', arg: 'value' },
    write: { kind: 'string', usage: 'File to write token to instead of stdout', arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    if (flags.string('spiffeID') === '') throw new CommandError('spiffeID must be specified');
    const audience = flags.list('audience');
    if (audience.length === 0) throw new CommandError('at least one audience must be specified');
    let id: { trustDomain: string; path: string };
    let ttl: number;
    try {
      id = parseIdToProto(flags.string('spiffeID'));
      ttl = checkedInt32(ttlToSeconds(flags.duration('ttl')), 'TTL', 'time.Duration');
    } catch (e) {
      throw new CommandError((e as Error).message);
    }
    await withServer(flags.string('socketPath'), async (conn) => {
      const resp = await conn.rpc(() => conn.client(SvidService).mintJWTSVID({ id, ttl, audience }), 'unable to mint SVID: ');
      const token = resp.svid?.token ?? '';
      if (token === '') throw new CommandError('server response missing token');
      try {
        const exp = jwtExpiry(token);
        if (exp * 1000 - Date.now() < flags.duration('ttl') * 1000) {
          env.stderr.write(`JWT-SVID lifetime was capped shorter than specified ttl; expires "${goRfc3339Utc(exp)}"\n`);
        }
      } catch (e) {
        env.stderr.write(`Unable to determine JWT-SVID lifetime: ${(e as Error).message}\n`);
      }
      const out = flags.string('write');
      if (out === '') {
        await printProto(env, format, MintJWTSVIDResponseSchema, resp, () => {
          env.stdout.write(token + '\n');
        });
        return;
      }
      const path = resolve(env.cwd, out);
      try {
        await writeFile(path, token, { mode: 0o600 });
      } catch (e) {
        throw new CommandError(`unable to write token: ${(e as Error).message}`);
      }
      env.stdout.write(`JWT-SVID written to ${join(out)}\n`);
    });
  },
};

export const jwtCommand: Command = {
  name: 'jwt',
  summary: 'Mint JWT-SVIDs',
  subcommands: [mintCommand],
};
