/**
 * SPIRE's LocalAuthority API (`pkg/server/api/localauthority/v1`): the state of this server's
 * X.509 CA and JWT keys (active, prepared, old) and manual preparation and activation, with
 * SPIRE's checks and error texts. Taint and revoke are not served (Unimplemented): ztwim's bundle
 * has no tainted keys yet.
 */
import type { ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { internal, invalidArgument, unavailable, type Logger } from '@ztwim/core';
import type { AuthorityStateSchema, LocalAuthorityService } from '@ztwim/proto';
import type { LocalAuthority, LocalAuthorityStates } from '../ca/manager.ts';

/** What the service needs of the CA manager. */
export interface LocalAuthorityCa {
  localAuthorities(): { readonly x509: LocalAuthorityStates; readonly jwt: LocalAuthorityStates };
  prepareX509Authority(): Promise<LocalAuthority>;
  activateX509Authority(): Promise<LocalAuthority>;
  prepareJwtAuthority(): Promise<LocalAuthority>;
  activateJwtAuthority(): Promise<LocalAuthority>;
}

export interface LocalAuthorityServiceDeps {
  readonly ca: LocalAuthorityCa;
  readonly log: Logger;
}

type StateInit = MessageInitShape<typeof AuthorityStateSchema>;

/** SPIRE's stateFromSlot: expires_at in Unix seconds; the upstream SKID only where there is one. */
export function authorityStateOf(a: LocalAuthority): StateInit {
  return {
    authorityId: a.authorityId,
    expiresAt: BigInt(Math.floor(a.expiresAt.getTime() / 1000)),
    upstreamAuthoritySubjectKeyId: a.upstreamAuthorityId ?? '',
  };
}

/** SPIRE's view of the states: an active key is required (else the server is still starting). */
function statesOf(s: LocalAuthorityStates): { active: StateInit; prepared?: StateInit; old?: StateInit } {
  if (s.active === undefined) throw unavailableInit();
  return {
    active: authorityStateOf(s.active),
    ...(s.prepared === undefined ? {} : { prepared: authorityStateOf(s.prepared) }),
    ...(s.old === undefined ? {} : { old: authorityStateOf(s.old) }),
  };
}

/** SPIRE answers Unavailable "server is initializing" before the first key exists. */
const unavailableInit = (): Error => unavailable('server is initializing');

/**
 * SPIRE's checks before an activation: an authority ID is given, it names the key in the slot
 * beside the active one (SPIRE's next slot: the prepared key, else the old one), and that key is
 * prepared, not old.
 */
function checkActivate(kind: LocalAuthorityStates, authorityId: string): void {
  if (authorityId === '') throw invalidArgument('no authority ID provided');
  const next = kind.prepared ?? kind.old;
  if (next === undefined || authorityId !== next.authorityId) throw invalidArgument('unexpected authority ID');
  if (kind.prepared === undefined) throw internal('only Prepared authorities can be activated: unsupported local authority status: OLD');
}

export function localAuthorityService(deps: LocalAuthorityServiceDeps): Partial<ServiceImpl<typeof LocalAuthorityService>> {
  const { ca, log } = deps;
  // X.509 CA and JWT key go through the same steps; only the CA manager's calls and the label differ.
  const kinds = {
    x509: { label: 'X.509', states: () => ca.localAuthorities().x509, prepare: () => ca.prepareX509Authority(), activate: () => ca.activateX509Authority() },
    jwt: { label: 'JWT', states: () => ca.localAuthorities().jwt, prepare: () => ca.prepareJwtAuthority(), activate: () => ca.activateJwtAuthority() },
  };
  const prepare = async (kind: keyof typeof kinds): Promise<{ preparedAuthority: StateInit }> => {
    const k = kinds[kind];
    if (k.states().active === undefined) throw unavailableInit();
    const prepared = await k.prepare().catch(wrap(`failed to prepare ${k.label} authority`));
    log.info({ local_authority_id: prepared.authorityId }, `${k.label} authority prepared`);
    return { preparedAuthority: authorityStateOf(prepared) };
  };
  const activate = async (kind: keyof typeof kinds, authorityId: string): Promise<{ activatedAuthority: StateInit }> => {
    const k = kinds[kind];
    checkActivate(k.states(), authorityId);
    const activated = await k.activate();
    log.info({ local_authority_id: activated.authorityId }, `${k.label} authority activated`);
    return { activatedAuthority: authorityStateOf(activated) };
  };
  return {
    getX509AuthorityState: async () => statesOf(kinds.x509.states()),
    getJWTAuthorityState: async () => statesOf(kinds.jwt.states()),
    prepareX509Authority: () => prepare('x509'),
    activateX509Authority: (req) => activate('x509', req.authorityId),
    prepareJWTAuthority: () => prepare('jwt'),
    activateJWTAuthority: (req) => activate('jwt', req.authorityId),
  };
}

/** SPIRE's api.MakeErr with a cause: Internal, `<message>: <cause>`. */
const wrap =
  (message: string) =>
  (cause: unknown): never => {
    throw internal(`${message}: ${(cause as Error).message}`, { cause });
  };
