// `ztwim server federation create|list|show|update|delete|refresh`, compatible with spire-server's
// (cmd/spire-server/cli/federation): same flags, `-data` JSON, pretty output and error texts.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  BatchCreateFederationRelationshipResponseSchema,
  BatchDeleteFederationRelationshipResponseSchema,
  BatchUpdateFederationRelationshipResponseSchema,
  FederationRelationshipSchema,
  ListFederationRelationshipsResponseSchema,
  StatusSchema,
  TrustDomainService,
  type FederationRelationship,
} from '@ztwim/proto';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { SpiffeId } from '@ztwim/spiffe';
import { CommandError, type Command } from '../../command.ts';
import type { Env } from '../../env.ts';
import type { Flags } from '../../flags.ts';
import { goQuote, grpcCodeName } from '../../printer/go-format.ts';
import { bundleFormat, parseBundleData } from './bundle.ts';
import { withServer } from './client.ts';
import {
  outputFormat,
  callServer,
  printProto,
  readInput,
  requiredTrustDomainId,
  serverFlags,
  writeTrustDomainDeleted,
  TRUST_DOMAIN_ID_FLAG,
} from './common.ts';

type RelationshipInit = MessageInitShape<typeof FederationRelationshipSchema>;

/** spire-server's federationRelationshipConfig (flags, or one item of `-data`). */
interface RelationshipConfig {
  trustDomain: string;
  bundleEndpointURL: string;
  bundleEndpointProfile: string;
  endpointSPIFFEID: string;
  trustDomainBundleFormat: string;
  /** Flags only. */
  trustDomainBundlePath: string;
  /** `-data` only: a PEM string or a SPIFFE bundle object. */
  trustDomainBundle?: unknown;
}

const CONFIG_FLAGS = {
  trustDomain: { kind: 'string', usage: 'Name of the trust domain to federate with (e.g., example.org)', arg: 'string' },
  bundleEndpointURL: { kind: 'string', usage: 'URL of the SPIFFE bundle endpoint that provides the trust bundle (must use the HTTPS protocol)', arg: 'string' },
  bundleEndpointProfile: { kind: 'string', usage: 'Endpoint profile type (either "https_web" or "https_spiffe")', arg: 'string' },
  endpointSpiffeID: { kind: 'string', usage: "SPIFFE ID of the SPIFFE bundle endpoint server. Only used for 'spiffe' profile.", arg: 'string' },
  trustDomainBundlePath: { kind: 'string', usage: 'Path to the trust domain bundle data (optional).', arg: 'string' },
  trustDomainBundleFormat: { kind: 'string', usage: 'The format of the bundle data (optional). Either "pem" or "spiffe".', default: 'pem', arg: 'string' },
  data: {
    kind: 'string',
    usage: "Path to a file containing federation relationships in JSON format (optional). If set to '-', read the JSON from stdin.",
    arg: 'string',
  },
} as const;

function configFromFlags(flags: Flags): RelationshipConfig {
  return {
    trustDomain: flags.string('trustDomain'),
    bundleEndpointURL: flags.string('bundleEndpointURL'),
    bundleEndpointProfile: flags.string('bundleEndpointProfile'),
    endpointSPIFFEID: flags.string('endpointSpiffeID'),
    trustDomainBundlePath: flags.string('trustDomainBundlePath'),
    trustDomainBundleFormat: flags.string('trustDomainBundleFormat'),
  };
}

const isEmpty = (c: RelationshipConfig): boolean =>
  c.bundleEndpointProfile === '' &&
  c.bundleEndpointURL === '' &&
  c.trustDomainBundleFormat === 'pem' &&
  c.trustDomainBundlePath === '' &&
  c.endpointSPIFFEID === '' &&
  c.trustDomain === '';

async function bundleOf(c: RelationshipConfig, env: Env, td: string): Promise<RelationshipInit['trustDomainBundle']> {
  if (c.trustDomainBundlePath !== '') {
    let data: Buffer;
    try {
      data = await readFile(resolve(env.cwd, c.trustDomainBundlePath));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CommandError(
        `cannot read bundle file: open ${c.trustDomainBundlePath}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
      );
    }
    try {
      return parseBundleData(data, bundleFormat(c.trustDomainBundleFormat), td);
    } catch (e) {
      throw new CommandError(`cannot parse bundle file: ${(e as Error).message}`);
    }
  }
  if (c.trustDomainBundle !== undefined && c.trustDomainBundle !== null) {
    let data: Buffer;
    if (c.trustDomainBundleFormat === 'pem') {
      if (typeof c.trustDomainBundle !== 'string')
        throw new CommandError('cannot parse bundle raw message: failed to unmarshal json: json: cannot unmarshal object into Go value of type string');
      data = Buffer.from(c.trustDomainBundle);
    } else if (c.trustDomainBundleFormat === 'spiffe') data = Buffer.from(JSON.stringify(c.trustDomainBundle));
    else throw new CommandError(`cannot parse bundle raw message: bundle format ${goQuote(c.trustDomainBundleFormat)} is unsupported`);
    try {
      return parseBundleData(data, bundleFormat(c.trustDomainBundleFormat), td);
    } catch (e) {
      throw new CommandError(`cannot parse bundle raw message: ${(e as Error).message}`);
    }
  }
  return undefined;
}

/** spire-server's jsonToProto. */
async function toProto(c: RelationshipConfig, env: Env): Promise<RelationshipInit> {
  if (c.trustDomain === '') throw new CommandError('trust domain is required');
  if (c.bundleEndpointURL === '') throw new CommandError('bundle endpoint URL is required');
  let bundleTd = c.trustDomain;
  let profile: RelationshipInit['bundleEndpointProfile'];
  if (c.bundleEndpointProfile === 'https_web') profile = { case: 'httpsWeb', value: {} };
  else if (c.bundleEndpointProfile === 'https_spiffe') {
    if (c.endpointSPIFFEID === '') throw new CommandError("endpoint SPIFFE ID is required if 'https_spiffe' endpoint profile is set");
    try {
      bundleTd = SpiffeId.parse(c.endpointSPIFFEID).trustDomain.name;
    } catch (e) {
      throw new CommandError(`cannot parse bundle endpoint SPIFFE ID: ${(e as Error).message.replace(/^spiffeid: /, '')}`);
    }
    profile = { case: 'httpsSpiffe', value: { endpointSpiffeId: c.endpointSPIFFEID } };
  } else throw new CommandError(`unknown bundle endpoint profile type: ${goQuote(c.bundleEndpointProfile)}`);
  const trustDomainBundle = await bundleOf(c, env, bundleTd);
  return {
    trustDomain: c.trustDomain,
    bundleEndpointUrl: c.bundleEndpointURL,
    bundleEndpointProfile: profile,
    ...(trustDomainBundle === undefined ? {} : { trustDomainBundle }),
  };
}

async function relationshipsOf(flags: Flags, env: Env): Promise<RelationshipInit[]> {
  const config = configFromFlags(flags);
  const path = flags.string('data');
  if (path === '') return [await toProto(config, env)];
  if (!isEmpty(config)) throw new CommandError("cannot use other flags to specify relationship fields when 'data' flag is set");
  let data: Buffer;
  try {
    data = await readInput(env, path);
  } catch (e) {
    throw new CommandError((e as Error).message);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new CommandError(`failed to parse JSON: ${(e as Error).message}`);
  }
  const items = (doc as { federationRelationships?: unknown } | null)?.federationRelationships;
  const out: RelationshipInit[] = [];
  for (const [i, raw] of (Array.isArray(items) ? items : []).entries()) {
    const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const s = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : '');
    const c: RelationshipConfig = {
      trustDomain: s('trustDomain'),
      bundleEndpointURL: s('bundleEndpointURL'),
      bundleEndpointProfile: s('bundleEndpointProfile'),
      endpointSPIFFEID: s('endpointSPIFFEID'),
      trustDomainBundleFormat: s('trustDomainBundleFormat'),
      trustDomainBundlePath: '',
      trustDomainBundle: o['trustDomainBundle'],
    };
    try {
      out.push(await toProto(c, env));
    } catch (e) {
      throw new CommandError(`could not parse item ${i}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** spire-server's printFederationRelationship. */
function formatRelationship(fr: RelationshipInit | FederationRelationship | undefined): string {
  if (fr === undefined) return '';
  let text = `Trust domain              : ${fr.trustDomain ?? ''}\nBundle endpoint URL       : ${fr.bundleEndpointUrl ?? ''}\n`;
  const p = fr.bundleEndpointProfile;
  if (p?.case === 'httpsWeb') text += 'Bundle endpoint profile   : https_web\n';
  else if (p?.case === 'httpsSpiffe') text += `Bundle endpoint profile   : https_spiffe\nEndpoint SPIFFE ID        : ${p.value.endpointSpiffeId ?? ''}\n`;
  return text;
}

/** create/update's pretty output: successes on stdout, failures (with what was asked) on stderr. */
function printBatch(
  env: Env,
  verb: 'create' | 'update',
  asked: readonly RelationshipInit[],
  results: ReadonlyArray<{ status?: { code: number; message: string } | undefined; federationRelationship?: FederationRelationship | undefined }>,
): void {
  const failed: string[] = [];
  results.forEach((r, i) => {
    if ((r.status?.code ?? 0) === 0) env.stdout.write(`\n${formatRelationship(r.federationRelationship)}`);
    else {
      failed.push(
        `\nFailed to ${verb} the following federation relationship (code: ${grpcCodeName(r.status?.code ?? 0)}, msg: ${goQuote(r.status?.message ?? '')}):\n${formatRelationship(asked[i])}`,
      );
    }
  });
  for (const f of failed) {
    // Go's env.Println() goes to stdout, the message to stderr.
    env.stdout.write('\n');
    env.stderr.write(f.slice(1));
  }
  if (failed.length > 0) throw new CommandError(`failed to ${verb} one or more federation relationships`);
}

/** create and update: the same flags and output, one batch RPC each. */
function batchCommand(verb: 'create' | 'update', summary: string): Command {
  return {
    name: verb,
    summary,
    flags: serverFlags(CONFIG_FLAGS),
    async run(flags, env) {
      const format = outputFormat(flags);
      const asked = await relationshipsOf(flags, env);
      await withServer(flags.string('socketPath'), async (conn) => {
        const client = conn.client(TrustDomainService);
        const req = { federationRelationships: asked };
        if (verb === 'create') {
          const resp = await conn.rpc(() => client.batchCreateFederationRelationship(req), 'request failed: ');
          await printProto(env, format, BatchCreateFederationRelationshipResponseSchema, resp, () => printBatch(env, verb, asked, resp.results));
        } else {
          const resp = await conn.rpc(() => client.batchUpdateFederationRelationship(req), 'request failed: ');
          await printProto(env, format, BatchUpdateFederationRelationshipResponseSchema, resp, () => printBatch(env, verb, asked, resp.results));
        }
      });
    },
  };
}

const createCommand = batchCommand('create', 'Creates a dynamic federation relationship with a foreign trust domain');
const updateCommand = batchCommand('update', 'Updates a dynamic federation relationship with a foreign trust domain');

const listCommand: Command = {
  name: 'list',
  summary: 'Lists all dynamic federation relationships',
  flags: serverFlags({}),
  async run(flags, env) {
    const format = outputFormat(flags);
    const resp = await callServer(flags, (conn) => conn.client(TrustDomainService).listFederationRelationships({}), 'error listing federation relationship: ');
    await printProto(env, format, ListFederationRelationshipsResponseSchema, resp, () => {
      const n = resp.federationRelationships.length;
      env.stdout.write(`Found ${n} ${n === 1 ? 'federation relationship' : 'federation relationships'}\n`);
      for (const fr of resp.federationRelationships) env.stdout.write(`\n${formatRelationship(fr)}`);
    });
  },
};

const showCommand: Command = {
  name: 'show',
  summary: 'Shows a dynamic federation relationship',
  flags: serverFlags({ trustDomain: { kind: 'string', usage: 'The trust domain name of the federation relationship to show', arg: 'string' } }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const td = flags.string('trustDomain');
    if (td === '') throw new CommandError('a trust domain name is required');
    const fr = await callServer(
      flags,
      (conn) => conn.client(TrustDomainService).getFederationRelationship({ trustDomain: td }),
      'error showing federation relationship: ',
    );
    await printProto(env, format, FederationRelationshipSchema, fr, () => {
      env.stdout.write(`Found a federation relationship with trust domain ${td}:\n\n${formatRelationship(fr)}`);
    });
  },
};

const deleteCommand: Command = {
  name: 'delete',
  summary: 'Deletes a dynamic federation relationship',
  flags: serverFlags(TRUST_DOMAIN_ID_FLAG),
  async run(flags, env) {
    const format = outputFormat(flags);
    const id = requiredTrustDomainId(flags);
    const resp = await callServer(
      flags,
      (conn) => conn.client(TrustDomainService).batchDeleteFederationRelationship({ trustDomains: [id] }),
      'failed to delete federation relationship: ',
    );
    await printProto(env, format, BatchDeleteFederationRelationshipResponseSchema, resp, () =>
      writeTrustDomainDeleted(env, resp.results[0], 'federation relationship'),
    );
  },
};

const refreshCommand: Command = {
  name: 'refresh',
  summary: 'Refreshes the bundle from the specified federated trust domain',
  flags: serverFlags(TRUST_DOMAIN_ID_FLAG),
  async run(flags, env) {
    const format = outputFormat(flags);
    const id = requiredTrustDomainId(flags);
    await withServer(flags.string('socketPath'), async (conn) => {
      try {
        await conn.client(TrustDomainService).refreshBundle({ trustDomain: id });
      } catch (e) {
        const { ConnectError, Code } = await import('@connectrpc/connect');
        if (e instanceof ConnectError && e.code === Code.NotFound)
          throw new CommandError(`there is no federation relationship with trust domain ${goQuote(id)}`);
        await conn.rpc(() => Promise.reject(e), 'failed to refresh bundle: ');
      }
      const ok = create(StatusSchema, { code: 0, message: 'OK' });
      await printProto(env, format, StatusSchema, ok, () => void env.stdout.write('Bundle refreshed\n'));
    });
  },
};

export const federationCommand: Command = {
  name: 'federation',
  summary: 'Manage federation relationships',
  subcommands: [createCommand, deleteCommand, listCommand, refreshCommand, showCommand, updateCommand],
};
