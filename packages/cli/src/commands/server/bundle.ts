// `ztwim server bundle show|list|set|delete|count`, compatible with spire-server's.
import { X509Certificate } from 'node:crypto';
import { spiffeBundleToWire, type WireBundleInit } from '@ztwim/core';

import {
  BatchDeleteFederatedBundleRequest_Mode,
  BatchDeleteFederatedBundleResponseSchema,
  BatchSetFederatedBundleResponseSchema,
  BundleSchema,
  BundleService,
  CountBundlesResponseSchema,
  ListFederatedBundlesResponseSchema,
  type Bundle,
} from '@ztwim/proto';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { CommandError, type Command } from '../../command.ts';
import type { Env } from '../../env.ts';
import { formatBundle, formatBundleCount, parseBundleFormat, type BundleFormat } from '../../printer/bundle.ts';
import { goQuote } from '../../printer/go-format.ts';
import { withServer } from './client.ts';
import {
  outputFormat,
  parseTrustDomainName,
  callServer,
  printProto,
  readStream,
  requiredTrustDomainId,
  serverFlags,
  writeTrustDomainDeleted,
  TRUST_DOMAIN_ID_FLAG,
} from './common.ts';

export function bundleFormat(s: string): BundleFormat {
  try {
    return parseBundleFormat(s);
  } catch (e) {
    throw new CommandError((e as Error).message);
  }
}

function write(env: Env, b: Bundle, format: string, header: boolean): void {
  const f = bundleFormat(format);
  let text: string;
  try {
    text = formatBundle(b, f, header);
  } catch (e) {
    throw new CommandError((e as Error).message);
  }
  env.stdout.write(text);
}

const showCommand: Command = {
  name: 'show',
  summary: 'Prints server CA bundle to stdout',
  flags: serverFlags({
    format: {
      kind: 'string',
      usage: 'The format to show the bundle (only pretty output format supports this flag). Either "pem" or "spiffe".',
      default: 'pem',
      arg: 'string',
    },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const b = await callServer(flags, (conn) => conn.client(BundleService).getBundle({}));
    await printProto(env, format, BundleSchema, b, () => write(env, b, flags.string('format'), false));
  },
};

const listCommand: Command = {
  name: 'list',
  summary: 'Lists federated bundle data',
  flags: serverFlags({
    ...TRUST_DOMAIN_ID_FLAG,
    format: {
      kind: 'string',
      usage: 'The format to list federated bundles (only pretty output format supports this flag). Either "pem" or "spiffe".',
      default: 'pem',
      arg: 'string',
    },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const id = flags.string('id');
    await withServer(flags.string('socketPath'), async (conn) => {
      if (id !== '') {
        const b = await conn.rpc(() => conn.client(BundleService).getFederatedBundle({ trustDomain: id }));
        await printProto(env, format, BundleSchema, b, () => write(env, b, flags.string('format'), false));
        return;
      }
      const resp = await conn.rpc(() => conn.client(BundleService).listFederatedBundles({}));
      await printProto(env, format, ListFederatedBundlesResponseSchema, resp, () => {
        resp.bundles.forEach((b, i) => {
          if (i !== 0) env.stdout.write('\n');
          write(env, b, flags.string('format'), true);
        });
      });
    });
  },
};

/** Go pemutil.ParseCertificates: every block must be a CERTIFICATE. */
function parsePemCertificates(text: string): Uint8Array[] {
  const re = /-----BEGIN ([^-\n]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  const out: Uint8Array[] = [];
  let n = 0;
  for (const m of text.matchAll(re)) {
    n++;
    const type = m[1] as string;
    if (type !== 'CERTIFICATE') throw new Error(`expected block type "CERTIFICATE"; got ${goQuote(type)}`);
    const der = Buffer.from((m[2] as string).replace(/\s+/g, ''), 'base64');
    try {
      new X509Certificate(der);
    } catch (e) {
      throw new Error(`unable to parse "CERTIFICATE" PEM block ${n}: x509: ${(e as Error).message}`);
    }
    out.push(new Uint8Array(der));
  }
  if (out.length === 0) throw new Error('no PEM blocks');
  return out;
}

/** go-jose rejects keys of unknown `kty` before go-spiffe looks at them. */
function checkJoseKeyTypes(data: Buffer): void {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch {
    return; // the SDK reports JSON syntax errors
  }
  const keys = typeof doc === 'object' && doc !== null ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) return;
  for (const k of keys) {
    const kty = typeof k === 'object' && k !== null ? (k as { kty?: unknown }).kty : undefined;
    const t = typeof kty === 'string' ? kty : '';
    if (!['EC', 'RSA', 'OKP', 'oct'].includes(t)) {
      throw new Error(`unable to parse JWKS: go-jose/go-jose: unknown json web key type '${t}'`);
    }
  }
}

/** spire-server's util.ParseBundle. */
export function parseBundleData(data: Buffer, format: BundleFormat, id: string): WireBundleInit {
  if (format === 'pem') {
    let certs: Uint8Array[];
    try {
      certs = parsePemCertificates(data.toString('utf8'));
    } catch (e) {
      throw new CommandError(`unable to parse bundle data: ${(e as Error).message}`);
    }
    return { trustDomain: id, x509Authorities: certs.map((asn1) => ({ asn1, tainted: false })), jwtAuthorities: [], refreshHint: 0n, sequenceNumber: 0n };
  }
  let td: TrustDomain;
  try {
    td = TrustDomain.fromValidated(parseTrustDomainName(id));
  } catch (e) {
    throw new CommandError((e as Error).message);
  }
  let sb: SpiffeBundle;
  try {
    checkJoseKeyTypes(data);
    sb = SpiffeBundle.parse(td, data);
  } catch (e) {
    const msg = (e as Error).message;
    throw new CommandError(`unable to parse to spiffe bundle: ${msg.startsWith('spiffebundle: ') ? msg : `spiffebundle: ${msg}`}`);
  }
  try {
    return spiffeBundleToWire(sb);
  } catch (e) {
    throw new CommandError(`unable to parse to type bundle: ${(e as Error).message}`);
  }
}

const setCommand: Command = {
  name: 'set',
  summary: 'Creates or updates federated bundle data',
  flags: serverFlags({
    ...TRUST_DOMAIN_ID_FLAG,
    path: { kind: 'string', usage: 'Path to the bundle data', arg: 'string' },
    format: { kind: 'string', usage: 'The format of the bundle data. Either "pem" or "spiffe".', default: 'pem', arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const id = flags.string('id');
    if (id === '') throw new CommandError('id flag is required');
    const bf = bundleFormat(flags.string('format'));
    let data: Buffer;
    try {
      const path = flags.string('path');
      if (path === '') data = await readStream(env.stdin);
      else {
        const { readFile } = await import('node:fs/promises');
        const { resolve } = await import('node:path');
        data = await readFile(resolve(env.cwd, path));
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const text = err.code === 'ENOENT' ? 'no such file or directory' : err.message;
      throw new CommandError(`unable to load bundle data: open ${flags.string('path')}: ${text}`);
    }
    const bundle = parseBundleData(data, bf, id);
    const resp = await callServer(
      flags,
      (conn) => conn.client(BundleService).batchSetFederatedBundle({ bundle: [bundle] }),
      'failed to set federated bundle: ',
    );
    await printProto(env, format, BatchSetFederatedBundleResponseSchema, resp, () => {
      const r = resp.results[0];
      if ((r?.status?.code ?? 0) === 0) env.stdout.write('bundle set.\n');
      else throw new CommandError(`failed to set federated bundle: ${r?.status?.message ?? ''}`);
    });
  },
};

const MODES: Record<string, BatchDeleteFederatedBundleRequest_Mode> = {
  '': BatchDeleteFederatedBundleRequest_Mode.RESTRICT,
  restrict: BatchDeleteFederatedBundleRequest_Mode.RESTRICT,
  delete: BatchDeleteFederatedBundleRequest_Mode.DELETE,
  dissociate: BatchDeleteFederatedBundleRequest_Mode.DISSOCIATE,
};

const deleteCommand: Command = {
  name: 'delete',
  summary: 'Deletes federated bundle data',
  flags: serverFlags({
    ...TRUST_DOMAIN_ID_FLAG,
    mode: { kind: 'string', usage: 'Deletion mode: one of restrict, delete, or dissociate', default: 'restrict', arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const id = requiredTrustDomainId(flags);
    const mode = MODES[flags.string('mode')];
    if (mode === undefined) throw new CommandError(`unsupported mode ${goQuote(flags.string('mode'))}`);
    const resp = await callServer(
      flags,
      (conn) => conn.client(BundleService).batchDeleteFederatedBundle({ trustDomains: [id], mode }),
      'failed to delete federated bundle: ',
    );
    await printProto(env, format, BatchDeleteFederatedBundleResponseSchema, resp, () =>
      writeTrustDomainDeleted(env, resp.results[0], 'bundle', 'federated bundle'),
    );
  },
};

const countCommand: Command = {
  name: 'count',
  summary: 'Count bundles',
  flags: serverFlags({}),
  async run(flags, env) {
    const format = outputFormat(flags);
    const resp = await callServer(flags, (conn) => conn.client(BundleService).countBundles({}));
    await printProto(env, format, CountBundlesResponseSchema, resp, () => {
      env.stdout.write(formatBundleCount(resp.count));
    });
  },
};

export const bundleCommand: Command = {
  name: 'bundle',
  summary: 'Manage the trust bundle and federated bundles',
  subcommands: [countCommand, deleteCommand, listCommand, setCommand, showCommand],
};
