// @ztwim/proto public surface: generated message schemas/types and service
// descriptors (explicit re-exports; collisions renamed as noted), plus the
// gRPC transport/server helpers built on connect-node.
//
// Messages are created with `create(XSchema, init)` from @bufbuild/protobuf.

// RPC helpers
export { createUnixGrpcTransport, createTcpGrpcTransport, headersInterceptor, cancelOnBreak } from './rpc/client-transport.ts';
export type { GrpcClientTransport, GrpcClientOptions, TcpGrpcTransportOptions } from './rpc/client-transport.ts';
export { bindGrpcServer, startGrpcServer } from './rpc/grpc-server.ts';
export { guardConnections } from './rpc/connection-guard.ts';
export { acceptAnyAuthority, acceptedSocketOf } from './rpc/authority-layer.ts';
export type { AuthorityLayerOptions } from './rpc/authority-layer.ts';
export type {
  ConnectionLimits,
  GuardCloseReason,
  StartGrpcServerOptions,
  GrpcServer,
  GrpcServerAddress,
  GrpcListen,
  UnixListen,
  TcpListen,
  CloseOptions,
  GrpcConnection,
} from './rpc/grpc-server.ts';
export { withEncoding, encodingOf } from './rpc/encoded.ts';
export {
  GRPC_HDR,
  GRPC_OK_HEADERS,
  isGrpcProtoContentType,
  encodeGrpcMessage,
  parseGrpcTimeout,
  grpcFrame,
  collectRequestBody,
  unaryRequestPayload,
} from './rpc/grpc-wire.ts';
export { toConnectError, errorMappingInterceptor, statusOf, permissionDeniedError, permissionDeniedReasonOf } from './rpc/errors.ts';
export type { GrpcCodeResolver } from './rpc/errors.ts';
// Each gen module's file_* descriptor is exported too (for createRegistry, Any, JSON).

// Workload API (no proto package: /SpiffeWorkloadAPI/<Method>)
export {
  file_workload_workload,
  X509SVIDRequestSchema,
  X509SVIDResponseSchema,
  X509SVIDSchema as WorkloadX509SVIDSchema,
  X509BundlesRequestSchema,
  X509BundlesResponseSchema,
  JWTSVIDRequestSchema,
  JWTSVIDResponseSchema,
  JWTSVIDSchema as WorkloadJWTSVIDSchema,
  JWTBundlesRequestSchema,
  JWTBundlesResponseSchema,
  ValidateJWTSVIDRequestSchema,
  ValidateJWTSVIDResponseSchema,
  WITSVIDRequestSchema,
  WITSVIDResponseSchema,
  WITSVIDSchema,
  WITBundlesRequestSchema,
  WITBundlesResponseSchema,
  SpiffeWorkloadAPI,
} from './gen/workload/workload_pb.ts';
export type {
  X509SVIDRequest,
  X509SVIDResponse,
  X509SVID as WorkloadX509SVID,
  X509BundlesRequest,
  X509BundlesResponse,
  JWTSVIDRequest,
  JWTSVIDResponse,
  JWTSVID as WorkloadJWTSVID,
  JWTBundlesRequest,
  JWTBundlesResponse,
  ValidateJWTSVIDRequest,
  ValidateJWTSVIDResponse,
  WITSVIDRequest,
  WITSVIDResponse,
  WITSVID,
  WITBundlesRequest,
  WITBundlesResponse,
} from './gen/workload/workload_pb.ts';

// spire.api.types
export { file_spire_api_types_spiffeid, SPIFFEIDSchema } from './gen/spire/api/types/spiffeid_pb.ts';
export type { SPIFFEID } from './gen/spire/api/types/spiffeid_pb.ts';
export {
  file_spire_api_types_selector,
  SelectorSchema,
  SelectorMatchSchema,
  SelectorMatch_MatchBehavior,
  SelectorMatch_MatchBehaviorSchema,
} from './gen/spire/api/types/selector_pb.ts';
export type { Selector, SelectorMatch } from './gen/spire/api/types/selector_pb.ts';
export {
  file_spire_api_types_federateswith,
  FederatesWithMatchSchema,
  FederatesWithMatch_MatchBehavior,
  FederatesWithMatch_MatchBehaviorSchema,
} from './gen/spire/api/types/federateswith_pb.ts';
export type { FederatesWithMatch } from './gen/spire/api/types/federateswith_pb.ts';
export { file_spire_api_types_attestation, AttestationDataSchema } from './gen/spire/api/types/attestation_pb.ts';
export type { AttestationData } from './gen/spire/api/types/attestation_pb.ts';
export { file_spire_api_types_agent, AgentSchema, AgentMaskSchema } from './gen/spire/api/types/agent_pb.ts';
export type { Agent, AgentMask } from './gen/spire/api/types/agent_pb.ts';
export { file_spire_api_types_entry, EntrySchema, EntryMaskSchema } from './gen/spire/api/types/entry_pb.ts';
export type { Entry, EntryMask } from './gen/spire/api/types/entry_pb.ts';
export { file_spire_api_types_bundle, BundleSchema, X509CertificateSchema, JWTKeySchema, BundleMaskSchema } from './gen/spire/api/types/bundle_pb.ts';
export type { Bundle, X509Certificate, JWTKey, BundleMask } from './gen/spire/api/types/bundle_pb.ts';
export { file_spire_api_types_x509svid, X509SVIDSchema } from './gen/spire/api/types/x509svid_pb.ts';
export type { X509SVID } from './gen/spire/api/types/x509svid_pb.ts';
export { file_spire_api_types_jwtsvid, JWTSVIDSchema } from './gen/spire/api/types/jwtsvid_pb.ts';
export type { JWTSVID } from './gen/spire/api/types/jwtsvid_pb.ts';
export { file_spire_api_types_jointoken, JoinTokenSchema } from './gen/spire/api/types/jointoken_pb.ts';
export type { JoinToken } from './gen/spire/api/types/jointoken_pb.ts';
export {
  file_spire_api_types_status,
  StatusSchema,
  PermissionDeniedDetailsSchema,
  PermissionDeniedDetails_Reason,
  PermissionDeniedDetails_ReasonSchema,
} from './gen/spire/api/types/status_pb.ts';
export type { Status, PermissionDeniedDetails } from './gen/spire/api/types/status_pb.ts';

// spire.api.server.agent.v1 (service descriptor exported as AgentService)
export {
  file_spire_api_server_agent_v1_agent,
  CountAgentsRequestSchema,
  CountAgentsRequest_FilterSchema,
  CountAgentsResponseSchema,
  ListAgentsRequestSchema,
  ListAgentsRequest_FilterSchema,
  ListAgentsResponseSchema,
  GetAgentRequestSchema,
  DeleteAgentRequestSchema,
  BanAgentRequestSchema,
  AttestAgentRequestSchema,
  AttestAgentRequest_ParamsSchema,
  AttestAgentResponseSchema,
  AttestAgentResponse_ResultSchema,
  RenewAgentRequestSchema,
  RenewAgentResponseSchema,
  CreateJoinTokenRequestSchema,
  AgentX509SVIDParamsSchema,
  PostStatusRequestSchema,
  PostStatusResponseSchema,
  Agent as AgentService,
} from './gen/spire/api/server/agent/v1/agent_pb.ts';
export type {
  CountAgentsRequest,
  CountAgentsRequest_Filter,
  CountAgentsResponse,
  ListAgentsRequest,
  ListAgentsRequest_Filter,
  ListAgentsResponse,
  GetAgentRequest,
  DeleteAgentRequest,
  BanAgentRequest,
  AttestAgentRequest,
  AttestAgentRequest_Params,
  AttestAgentResponse,
  AttestAgentResponse_Result,
  RenewAgentRequest,
  RenewAgentResponse,
  CreateJoinTokenRequest,
  AgentX509SVIDParams,
  PostStatusRequest,
  PostStatusResponse,
} from './gen/spire/api/server/agent/v1/agent_pb.ts';

// spire.api.server.entry.v1
export {
  file_spire_api_server_entry_v1_entry,
  CountEntriesRequestSchema,
  CountEntriesRequest_FilterSchema,
  CountEntriesResponseSchema,
  ListEntriesRequestSchema,
  ListEntriesRequest_FilterSchema,
  ListEntriesResponseSchema,
  GetEntryRequestSchema,
  BatchCreateEntryRequestSchema,
  BatchCreateEntryResponseSchema,
  BatchCreateEntryResponse_ResultSchema,
  BatchUpdateEntryRequestSchema,
  BatchUpdateEntryResponseSchema,
  BatchUpdateEntryResponse_ResultSchema,
  BatchDeleteEntryRequestSchema,
  BatchDeleteEntryResponseSchema,
  BatchDeleteEntryResponse_ResultSchema,
  GetAuthorizedEntriesRequestSchema,
  GetAuthorizedEntriesResponseSchema,
  SyncAuthorizedEntriesRequestSchema,
  SyncAuthorizedEntriesResponseSchema,
  EntryRevisionSchema,
  Entry as EntryService,
} from './gen/spire/api/server/entry/v1/entry_pb.ts';
export type {
  CountEntriesRequest,
  CountEntriesRequest_Filter,
  CountEntriesResponse,
  ListEntriesRequest,
  ListEntriesRequest_Filter,
  ListEntriesResponse,
  GetEntryRequest,
  BatchCreateEntryRequest,
  BatchCreateEntryResponse,
  BatchCreateEntryResponse_Result,
  BatchUpdateEntryRequest,
  BatchUpdateEntryResponse,
  BatchUpdateEntryResponse_Result,
  BatchDeleteEntryRequest,
  BatchDeleteEntryResponse,
  BatchDeleteEntryResponse_Result,
  GetAuthorizedEntriesRequest,
  GetAuthorizedEntriesResponse,
  SyncAuthorizedEntriesRequest,
  SyncAuthorizedEntriesResponse,
  EntryRevision,
} from './gen/spire/api/server/entry/v1/entry_pb.ts';

// spire.api.server.svid.v1
export {
  file_spire_api_server_svid_v1_svid,
  MintX509SVIDRequestSchema,
  MintX509SVIDResponseSchema,
  MintJWTSVIDRequestSchema,
  MintJWTSVIDResponseSchema,
  BatchNewX509SVIDRequestSchema,
  BatchNewX509SVIDResponseSchema,
  BatchNewX509SVIDResponse_ResultSchema,
  NewJWTSVIDRequestSchema,
  NewJWTSVIDResponseSchema,
  NewDownstreamX509CARequestSchema,
  NewDownstreamX509CAResponseSchema,
  NewX509SVIDParamsSchema,
  SVID as SvidService,
} from './gen/spire/api/server/svid/v1/svid_pb.ts';
export type {
  MintX509SVIDRequest,
  MintX509SVIDResponse,
  MintJWTSVIDRequest,
  MintJWTSVIDResponse,
  BatchNewX509SVIDRequest,
  BatchNewX509SVIDResponse,
  BatchNewX509SVIDResponse_Result,
  NewJWTSVIDRequest,
  NewJWTSVIDResponse,
  NewDownstreamX509CARequest,
  NewDownstreamX509CAResponse,
  NewX509SVIDParams,
} from './gen/spire/api/server/svid/v1/svid_pb.ts';

// spire.api.server.bundle.v1
export {
  file_spire_api_server_bundle_v1_bundle,
  CountBundlesRequestSchema,
  CountBundlesResponseSchema,
  GetBundleRequestSchema,
  AppendBundleRequestSchema,
  PublishJWTAuthorityRequestSchema,
  PublishJWTAuthorityResponseSchema,
  ListFederatedBundlesRequestSchema,
  ListFederatedBundlesResponseSchema,
  GetFederatedBundleRequestSchema,
  BatchCreateFederatedBundleRequestSchema,
  BatchCreateFederatedBundleResponseSchema,
  BatchCreateFederatedBundleResponse_ResultSchema,
  BatchUpdateFederatedBundleRequestSchema,
  BatchUpdateFederatedBundleResponseSchema,
  BatchUpdateFederatedBundleResponse_ResultSchema,
  BatchSetFederatedBundleRequestSchema,
  BatchSetFederatedBundleResponseSchema,
  BatchSetFederatedBundleResponse_ResultSchema,
  BatchDeleteFederatedBundleRequestSchema,
  BatchDeleteFederatedBundleRequest_Mode,
  BatchDeleteFederatedBundleRequest_ModeSchema,
  BatchDeleteFederatedBundleResponseSchema,
  BatchDeleteFederatedBundleResponse_ResultSchema,
  Bundle as BundleService,
} from './gen/spire/api/server/bundle/v1/bundle_pb.ts';
export type {
  CountBundlesRequest,
  CountBundlesResponse,
  GetBundleRequest,
  AppendBundleRequest,
  PublishJWTAuthorityRequest,
  PublishJWTAuthorityResponse,
  ListFederatedBundlesRequest,
  ListFederatedBundlesResponse,
  GetFederatedBundleRequest,
  BatchCreateFederatedBundleRequest,
  BatchCreateFederatedBundleResponse,
  BatchCreateFederatedBundleResponse_Result,
  BatchUpdateFederatedBundleRequest,
  BatchUpdateFederatedBundleResponse,
  BatchUpdateFederatedBundleResponse_Result,
  BatchSetFederatedBundleRequest,
  BatchSetFederatedBundleResponse,
  BatchSetFederatedBundleResponse_Result,
  BatchDeleteFederatedBundleRequest,
  BatchDeleteFederatedBundleResponse,
  BatchDeleteFederatedBundleResponse_Result,
} from './gen/spire/api/server/bundle/v1/bundle_pb.ts';

// spire.api.server.debug.v1
export {
  file_spire_api_server_debug_v1_debug,
  GetInfoRequestSchema,
  GetInfoResponseSchema,
  GetInfoResponse_CertSchema,
  Debug as DebugService,
} from './gen/spire/api/server/debug/v1/debug_pb.ts';
export type { GetInfoRequest, GetInfoResponse, GetInfoResponse_Cert } from './gen/spire/api/server/debug/v1/debug_pb.ts';

// ztwim.agent.v1 (ztwim's own: entry-change hints from server to agent)
export {
  file_ztwim_agent_v1_hints,
  WatchRequestSchema as HintsWatchRequestSchema,
  HintSchema,
  AgentHints as AgentHintsService,
} from './gen/ztwim/agent/v1/hints_pb.ts';
export type { WatchRequest as HintsWatchRequest, Hint } from './gen/ztwim/agent/v1/hints_pb.ts';

// ztwim.server.v1 (ztwim's own: the admin API's change revision, for watchers such as the console)
export { file_ztwim_server_v1_changes, GetRevisionRequestSchema, RevisionSchema, Changes as ChangesService } from './gen/ztwim/server/v1/changes_pb.ts';
export type { GetRevisionRequest, Revision } from './gen/ztwim/server/v1/changes_pb.ts';
// ztwim.server.v1.ServerInfo (ztwim's own: version, plugins and health, for the console's server page)
export {
  file_ztwim_server_v1_server_info,
  GetServerInfoRequestSchema,
  GetAgentsLastSeenRequestSchema,
  AgentsLastSeenSchema,
  ServerInfoResponseSchema,
  PluginSchema as ServerPluginSchema,
  HealthSchema as ServerHealthSchema,
  ServerInfo as ServerInfoService,
} from './gen/ztwim/server/v1/server_info_pb.ts';
export type { GetServerInfoRequest, ServerInfoResponse, Plugin as ServerPlugin, Health as ServerHealth } from './gen/ztwim/server/v1/server_info_pb.ts';

// grpc.health.v1
export {
  file_grpc_health_v1_health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponse_ServingStatusSchema,
  Health as HealthService,
} from './gen/grpc/health/v1/health_pb.ts';
export type { HealthCheckRequest, HealthCheckResponse } from './gen/grpc/health/v1/health_pb.ts';

// spire.common (datastore bundle blob; prefixed Common*)
export {
  file_spire_common_common,
  BundleSchema as CommonBundleSchema,
  CertificateSchema as CommonCertificateSchema,
  PublicKeySchema as CommonPublicKeySchema,
} from './gen/spire/common/common_pb.ts';
export type { Bundle as CommonBundle, Certificate as CommonCertificate, PublicKey as CommonPublicKey } from './gen/spire/common/common_pb.ts';

// csi.v1 (Container Storage Interface; @ztwim/csi serves Identity and Node)
export {
  file_csi_v1_csi,
  Identity as CsiIdentityService,
  Node as CsiNodeService,
  Controller as CsiControllerService,
  GetPluginInfoRequestSchema,
  GetPluginInfoResponseSchema,
  GetPluginCapabilitiesRequestSchema,
  GetPluginCapabilitiesResponseSchema,
  ProbeRequestSchema,
  ProbeResponseSchema,
  VolumeCapabilitySchema,
  VolumeCapability_MountVolumeSchema,
  VolumeCapability_BlockVolumeSchema,
  VolumeCapability_AccessModeSchema,
  VolumeCapability_AccessMode_Mode,
  NodePublishVolumeRequestSchema,
  NodePublishVolumeResponseSchema,
  NodeUnpublishVolumeRequestSchema,
  NodeUnpublishVolumeResponseSchema,
  NodeGetVolumeStatsRequestSchema,
  NodeGetVolumeStatsResponseSchema,
  VolumeUsageSchema,
  VolumeUsage_Unit,
  NodeGetCapabilitiesRequestSchema,
  NodeGetCapabilitiesResponseSchema,
  NodeServiceCapabilitySchema,
  NodeServiceCapability_RPC_Type,
  NodeGetInfoRequestSchema,
  NodeGetInfoResponseSchema,
} from './gen/csi/v1/csi_pb.ts';
export type {
  GetPluginInfoResponse,
  GetPluginCapabilitiesResponse,
  ProbeResponse,
  VolumeCapability,
  VolumeCapability_AccessMode,
  NodePublishVolumeRequest,
  NodePublishVolumeResponse,
  NodeUnpublishVolumeRequest,
  NodeUnpublishVolumeResponse,
  NodeGetVolumeStatsRequest,
  NodeGetVolumeStatsResponse,
  VolumeUsage,
  NodeGetCapabilitiesResponse,
  NodeServiceCapability,
  NodeGetInfoResponse,
} from './gen/csi/v1/csi_pb.ts';

// pluginregistration (the kubelet's plugin registration API, k8s.io/kubelet pluginregistration/v1)
export {
  file_kubelet_pluginregistration_v1_api,
  Registration as PluginRegistrationService,
  PluginInfoSchema,
  RegistrationStatusSchema,
  RegistrationStatusResponseSchema,
  InfoRequestSchema as PluginInfoRequestSchema,
} from './gen/kubelet/pluginregistration/v1/api_pb.ts';
export type { PluginInfo, RegistrationStatus, RegistrationStatusResponse } from './gen/kubelet/pluginregistration/v1/api_pb.ts';

// spire.api.types.FederationRelationship and spire.api.server.trustdomain.v1 (service exported as TrustDomainService)
export {
  file_spire_api_types_federationrelationship,
  FederationRelationshipSchema,
  HTTPSSPIFFEProfileSchema,
  HTTPSWebProfileSchema,
  FederationRelationshipMaskSchema,
} from './gen/spire/api/types/federationrelationship_pb.ts';
export type {
  FederationRelationship,
  HTTPSSPIFFEProfile,
  HTTPSWebProfile,
  FederationRelationshipMask,
} from './gen/spire/api/types/federationrelationship_pb.ts';
export {
  file_spire_api_server_trustdomain_v1_trustdomain,
  ListFederationRelationshipsRequestSchema,
  ListFederationRelationshipsResponseSchema,
  GetFederationRelationshipRequestSchema,
  BatchCreateFederationRelationshipRequestSchema,
  BatchCreateFederationRelationshipResponseSchema,
  BatchCreateFederationRelationshipResponse_ResultSchema,
  BatchUpdateFederationRelationshipRequestSchema,
  BatchUpdateFederationRelationshipResponseSchema,
  BatchUpdateFederationRelationshipResponse_ResultSchema,
  BatchDeleteFederationRelationshipRequestSchema,
  BatchDeleteFederationRelationshipResponseSchema,
  BatchDeleteFederationRelationshipResponse_ResultSchema,
  RefreshBundleRequestSchema,
  TrustDomain as TrustDomainService,
} from './gen/spire/api/server/trustdomain/v1/trustdomain_pb.ts';
export type {
  ListFederationRelationshipsRequest,
  ListFederationRelationshipsResponse,
  GetFederationRelationshipRequest,
  BatchCreateFederationRelationshipRequest,
  BatchCreateFederationRelationshipResponse,
  BatchCreateFederationRelationshipResponse_Result,
  BatchUpdateFederationRelationshipRequest,
  BatchUpdateFederationRelationshipResponse,
  BatchUpdateFederationRelationshipResponse_Result,
  BatchDeleteFederationRelationshipRequest,
  BatchDeleteFederationRelationshipResponse,
  BatchDeleteFederationRelationshipResponse_Result,
  RefreshBundleRequest,
} from './gen/spire/api/server/trustdomain/v1/trustdomain_pb.ts';

// spire.api.server.localauthority.v1 (service exported as LocalAuthorityService)
export {
  file_spire_api_server_localauthority_v1_localauthority,
  AuthorityStateSchema,
  LocalAuthority as LocalAuthorityService,
} from './gen/spire/api/server/localauthority/v1/localauthority_pb.ts';
export type {
  AuthorityState,
  GetX509AuthorityStateResponse,
  GetJWTAuthorityStateResponse,
} from './gen/spire/api/server/localauthority/v1/localauthority_pb.ts';
