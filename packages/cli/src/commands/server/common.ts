// Flags and output plumbing shared by the `ztwim server ...` admin commands.
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { spiffeIdToWire } from '@ztwim/core';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { FlagSpecs } from '../../flags.ts';
import type { Flags } from '../../flags.ts';
import { CommandError } from '../../command.ts';
import type { Env } from '../../env.ts';
import { goQuote } from '../../printer/go-format.ts';
import { DEFAULT_SERVER_SOCKET_PATH, withServer, type ServerConnection } from './client.ts';

export const SOCKET_FLAG: FlagSpecs = {
  socketPath: { kind: 'string', usage: 'Path to the SPIRE Server API socket', default: DEFAULT_SERVER_SOCKET_PATH, arg: 'path' },
};

export const OUTPUT_FLAG: FlagSpecs = {
  output: { kind: 'string', usage: 'Desired output format (pretty, json); default: pretty.', default: 'pretty', arg: 'value' },
};

/** `-id`, the trust domain of the bundle and federation commands. */
export const TRUST_DOMAIN_ID_FLAG: FlagSpecs = {
  id: { kind: 'string', usage: 'SPIFFE ID of the trust domain', arg: 'string' },
};

/** The value of `-id`; empty is an error, as in SPIRE's CLI. */
export function requiredTrustDomainId(flags: Flags): string {
  const id = flags.string('id');
  if (id === '') throw new CommandError('id is required');
  return id;
}

/** `-socketPath` and `-output`, plus the command's own flags. */
export function serverFlags(own: FlagSpecs, withOutput = true): FlagSpecs {
  return { ...own, ...SOCKET_FLAG, ...(withOutput ? OUTPUT_FLAG : {}) };
}

export type OutputFormat = 'pretty' | 'json';

/** cliprinter's format parsing (`json`, `pretty`/`prettyprint`, case-insensitive). */
export function outputFormat(flags: Flags): OutputFormat {
  const f = flags.string('output').toLowerCase();
  if (f === 'json') return 'json';
  if (f === 'pretty' || f === 'prettyprint') return 'pretty';
  throw new CommandError(`bad formatter flag: unknown format option: ${goQuote(flags.string('output'))}`);
}

/** Prints one message as `-output json`, or calls `pretty` otherwise. */
export async function printProto<Desc extends DescMessage>(
  env: Env,
  format: OutputFormat,
  schema: Desc,
  message: MessageShape<Desc>,
  pretty: () => void | Promise<void>,
): Promise<void> {
  if (format === 'json') {
    // Imported here: protobuf-es's JSON support is loaded only for `-output json`.
    const { formatProtoJson, protoItem } = await import('../../printer/proto-json.ts');
    env.stdout.write(formatProtoJson([protoItem(schema, message)]));
    return;
  }
  await pretty();
}

/** Dials the server at `-socketPath` and makes one call; its error text is led by `errorPrefix`. */
export async function callServer<T>(flags: Flags, call: (conn: ServerConnection) => Promise<T>, errorPrefix?: string): Promise<T> {
  return withServer(flags.string('socketPath'), (conn) => conn.rpc(() => call(conn), errorPrefix));
}

/**
 * The one result of a batch delete by trust domain: `<what> deleted.`, or its failure as an error
 * (`failed to delete <whatInError> "<trust domain>": ...`).
 */
export function writeTrustDomainDeleted(
  env: Env,
  r: { trustDomain: string; status?: { code: number; message: string } | undefined } | undefined,
  what: string,
  whatInError = what,
): void {
  if ((r?.status?.code ?? 0) === 0) env.stdout.write(`${what} deleted.\n`);
  else throw new CommandError(`failed to delete ${whatInError} ${goQuote(r?.trustDomain ?? '')}: ${r?.status?.message ?? ''}`);
}

/** Strips the SDK's `spiffeid: ` / `trustdomain: ` prefix, leaving go-spiffe's message. */
function goSpiffeMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/^(spiffeid|trustdomain): /, '');
}

/** go-spiffe `spiffeid.FromString` into the wire SPIFFEID; errors carry go-spiffe's text. */
export function parseIdToProto(s: string): { trustDomain: string; path: string } {
  try {
    return spiffeIdToWire(SpiffeId.parse(s));
  } catch (e) {
    throw new Error(goSpiffeMessage(e));
  }
}

/** go-spiffe `spiffeid.TrustDomainFromString` (accepts `td` or `spiffe://td`). */
export function parseTrustDomainName(s: string): string {
  try {
    return TrustDomain.parse(s).name;
  } catch (e) {
    throw new Error(goSpiffeMessage(e));
  }
}

/** spire-server's util.ParseSelector: `type:value`, split at the first colon. */
export function parseSelector(s: string): { type: string; value: string } {
  const i = s.indexOf(':');
  if (i < 0) throw new Error(`selector "${s}" must be formatted as type:value`);
  return { type: s.slice(0, i), value: s.slice(i + 1) };
}

/** Go util.CheckedCast[int32]. */
export function checkedInt32(n: number, what: string, goType = 'int'): number {
  if (!Number.isInteger(n) || n > 2147483647 || n < -2147483648) {
    throw new Error(`invalid value for ${what}: overflow converting ${goType}(${n}) to int32`);
  }
  return n;
}

/** Reads a file, or stdin for `-`. */
export async function readInput(env: Env, path: string): Promise<Buffer> {
  if (path === '-') return await readStream(env.stdin);
  const { readFile } = await import('node:fs/promises');
  const { resolve } = await import('node:path');
  try {
    return await readFile(resolve(env.cwd, path));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`open ${path}: no such file or directory`);
    if (err.code === 'EACCES') throw new Error(`open ${path}: permission denied`);
    throw e;
  }
}

export async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
  return Buffer.concat(chunks);
}
