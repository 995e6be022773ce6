// `ztwim server localauthority x509|jwt show|prepare|activate|taint|revoke`, compatible with
// spire-server's (its flags, texts and `-output json`). The server answers taint and revoke with
// Unimplemented for now; the commands send them all the same, as spire-server does.
import type { DescMessage, Message } from '@bufbuild/protobuf';
import { LocalAuthorityService, type AuthorityState } from '@ztwim/proto';
import { CommandError, type Command } from '../../command.ts';
import type { Env } from '../../env.ts';
import { goTimeUtc } from '../../printer/go-format.ts';
import { withServer } from './client.ts';
import { outputFormat, printProto, serverFlags } from './common.ts';

type Kind = 'x509' | 'jwt';
const LABEL: Record<Kind, string> = { x509: 'X.509', jwt: 'JWT' };
const M = LocalAuthorityService.method;

/** spire-server's authoritycommon.PrettyPrintAuthorityState (the upstream line for X.509 only). */
function printState(env: Env, s: AuthorityState, kind: Kind): void {
  env.stdout.write(`  Authority ID: ${s.authorityId}\n  Expires at: ${goTimeUtc(s.expiresAt)}\n`);
  if (kind !== 'x509') return;
  env.stdout.write(
    s.upstreamAuthoritySubjectKeyId !== ''
      ? `  Upstream authority Subject Key ID: ${s.upstreamAuthoritySubjectKeyId}\n`
      : '  Upstream authority ID: No upstream authority\n',
  );
}

function showCommand(kind: Kind): Command {
  const label = LABEL[kind];
  return {
    name: 'show',
    goFlagSetName: `localauthority ${kind} show`,
    summary: `Shows the local ${label} authorities`,
    flags: serverFlags({}),
    async run(flags, env) {
      const format = outputFormat(flags);
      await withServer(flags.string('socketPath'), async (conn) => {
        const client = conn.client(LocalAuthorityService);
        if (kind === 'x509') {
          const res = await conn.rpc(() => client.getX509AuthorityState({}), 'could not get X.509 authorities: ');
          await printProto(env, format, M.getX509AuthorityState.output, res, () => printStates(env, kind, res));
        } else {
          const res = await conn.rpc(() => client.getJWTAuthorityState({}));
          await printProto(env, format, M.getJWTAuthorityState.output, res, () => printStates(env, kind, res));
        }
      });
    },
  };
}

/** spire-server's show: active, prepared and old, each or "No ... found". */
function printStates(
  env: Env,
  kind: Kind,
  res: { active?: AuthorityState | undefined; prepared?: AuthorityState | undefined; old?: AuthorityState | undefined },
): void {
  const label = LABEL[kind];
  const parts: Array<[string, AuthorityState | undefined]> = [
    ['Active', res.active],
    ['Prepared', res.prepared],
    ['Old', res.old],
  ];
  parts.forEach(([name, s], i) => {
    if (i > 0) env.stdout.write('\n');
    env.stdout.write(`${name} ${label} authority:\n`);
    if (s !== undefined) printState(env, s, kind);
    else env.stdout.write(`  No ${name.toLowerCase()} ${label} authority found\n`);
  });
}

function prepareCommand(kind: Kind): Command {
  const label = LABEL[kind];
  const method = kind === 'x509' ? M.prepareX509Authority : M.prepareJWTAuthority;
  return {
    name: 'prepare',
    goFlagSetName: `localauthority ${kind} prepare`,
    summary:
      kind === 'x509'
        ? 'Prepares a new X.509 authority for use by generating a new key and injecting the resulting CA certificate into the bundle'
        : 'Prepares a new JWT authority for use by generating a new key and injecting it into the bundle',
    flags: serverFlags({}),
    async run(flags, env) {
      const format = outputFormat(flags);
      await withServer(flags.string('socketPath'), async (conn) => {
        const client = conn.client(LocalAuthorityService);
        const [schema, call]: [DescMessage, () => Promise<Message & { preparedAuthority?: AuthorityState | undefined }>] =
          kind === 'x509'
            ? [M.prepareX509Authority.output, () => client.prepareX509Authority({})]
            : [M.prepareJWTAuthority.output, () => client.prepareJWTAuthority({})];
        const res = await conn.rpc(call, `could not prepare ${label} authority: `);
        await printProto(env, format, schema, res, () => printResult(env, kind, 'Prepared', 'prepared', res.preparedAuthority));
      });
    },
  };
}

/** activate, taint and revoke: one `-authorityID`, one authority in the answer. */
function authorityCommand(kind: Kind, verb: 'activate' | 'taint' | 'revoke'): Command {
  const label = LABEL[kind];
  const past = { activate: 'Activated', taint: 'Tainted', revoke: 'Revoked' }[verb];
  const summary = {
    activate: `Activates a prepared ${label} authority for use, which will cause it to be used for all ${label} signing operations serviced by this server going forward`,
    taint: `Marks the previously active ${label} authority as being tainted`,
    revoke: `Revokes the previously active ${label} authority by removing it from the bundle and propagating this update throughout the cluster`,
  }[verb];
  return {
    name: verb,
    goFlagSetName: `localauthority ${kind} ${verb}`,
    summary,
    flags: serverFlags({ authorityID: { kind: 'string', usage: `The authority ID of the ${label} authority to ${verb}`, arg: 'string' } }),
    async run(flags, env) {
      const format = outputFormat(flags);
      const authorityId = flags.string('authorityID');
      if (authorityId === '') throw new CommandError('an authority ID is required');
      await withServer(flags.string('socketPath'), async (conn) => {
        const client = conn.client(LocalAuthorityService);
        const prefix = `could not ${verb} ${label} authority: `;
        const req = { authorityId };
        type One = Message & { [K in 'activatedAuthority' | 'taintedAuthority' | 'revokedAuthority']?: AuthorityState | undefined };
        const ops: Record<typeof verb, [DescMessage, () => Promise<One>, keyof One & `${string}Authority`]> =
          kind === 'x509'
            ? {
                activate: [M.activateX509Authority.output, () => client.activateX509Authority(req), 'activatedAuthority'],
                taint: [M.taintX509Authority.output, () => client.taintX509Authority(req), 'taintedAuthority'],
                revoke: [M.revokeX509Authority.output, () => client.revokeX509Authority(req), 'revokedAuthority'],
              }
            : {
                activate: [M.activateJWTAuthority.output, () => client.activateJWTAuthority(req), 'activatedAuthority'],
                taint: [M.taintJWTAuthority.output, () => client.taintJWTAuthority(req), 'taintedAuthority'],
                revoke: [M.revokeJWTAuthority.output, () => client.revokeJWTAuthority(req), 'revokedAuthority'],
              };
        const [schema, call, field] = ops[verb];
        const res = await conn.rpc(call, `could not ${verb} ${label} authority: `);
        await printProto(env, format, schema, res, () => printResult(env, kind, past, past.toLowerCase(), res[field]));
      });
    },
  };
}

function printResult(env: Env, kind: Kind, title: string, what: string, s: AuthorityState | undefined): void {
  env.stdout.write(`${title} ${LABEL[kind]} authority:\n`);
  if (s === undefined) throw new CommandError(`internal error: expected to have ${what} ${LABEL[kind]} authority information`);
  printState(env, s, kind);
}

const kindCommand = (kind: Kind): Command => ({
  name: kind,
  summary: `Manage the local ${LABEL[kind]} authorities`,
  subcommands: [showCommand(kind), prepareCommand(kind), authorityCommand(kind, 'activate'), authorityCommand(kind, 'taint'), authorityCommand(kind, 'revoke')],
});

export const localAuthorityCommand: Command = {
  name: 'localauthority',
  summary: "Manage the server's local X.509 and JWT authorities",
  subcommands: [kindCommand('x509'), kindCommand('jwt')],
};
