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
  return {
    getX509AuthorityState: async () => statesOf(ca.localAuthorities().x509),
    getJWTAuthorityState: async () => statesOf(ca.localAuthorities().jwt),
    async prepareX509Authority() {
      if (ca.localAuthorities().x509.active === undefined) throw unavailableInit();
      const prepared = await ca.prepareX509Authority().catch(wrap('failed to prepare X.509 authority'));
      log.info({ local_authority_id: prepared.authorityId }, 'X.509 authority prepared');
      return { preparedAuthority: authorityStateOf(prepared) };
    },
    async activateX509Authority(req) {
      checkActivate(ca.localAuthorities().x509, req.authorityId);
      const activated = await ca.activateX509Authority();
      log.info({ local_authority_id: activated.authorityId }, 'X.509 authority activated');
      return { activatedAuthority: authorityStateOf(activated) };
    },
    async prepareJWTAuthority() {
      if (ca.localAuthorities().jwt.active === undefined) throw unavailableInit();
      const prepared = await ca.prepareJwtAuthority().catch(wrap('failed to prepare JWT authority'));
      log.info({ local_authority_id: prepared.authorityId }, 'JWT authority prepared');
      return { preparedAuthority: authorityStateOf(prepared) };
    },
    async activateJWTAuthority(req) {
      checkActivate(ca.localAuthorities().jwt, req.authorityId);
      const activated = await ca.activateJwtAuthority();
      log.info({ local_authority_id: activated.authorityId }, 'JWT authority activated');
      return { activatedAuthority: authorityStateOf(activated) };
    },
  };
}

/** SPIRE's api.MakeErr with a cause: Internal, `<message>: <cause>`. */
const wrap =
  (message: string) =>
  (cause: unknown): never => {
    throw internal(`${message}: ${(cause as Error).message}`, { cause });
  };
