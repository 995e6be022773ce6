/**
 * The one table of structured log field names (as SPIRE's `pkg/common/telemetry/names.go`): every
 * key of an object passed to a logger call (`log.info({ ... }, 'Message')`, `log.child({ ... })`) in
 * the package sources is one of these. Names are snake_case; units go in the name (`_ms`, `_at`).
 * A new field is added here first: `npm run lint` (rule ztwim/log-field-names, which reads this
 * file) rejects a literal field name that is not in the table, and
 * `node scripts/codemods/log-field-names.mjs` renames the known camelCase spellings.
 */
export const LOG_FIELDS = [
  'access_mode',
  'address',
  'agent_id', // an agent's SPIFFE ID
  'allowed',
  'api_reads_per_min',
  'api_version',
  'api_writes_per_min',
  'attempt',
  'backup',
  'bundle_endpoint_profile',
  'bundle_endpoint_url',
  'caller_addr',
  'cert_dir',
  'challenge',
  'class_name',
  'cluster',
  'cluster_domain',
  'cluster_federated_trust_domain',
  'cluster_name',
  'cluster_spiffe_id',
  'cluster_static_entry',
  'code',
  'component', // the logger's component (createLogger's name)
  'config_map',
  'container_id',
  'controller',
  'count',
  'csi_socket_path',
  'data_store',
  'discovery_gets_per_min',
  'dns_names',
  'domains',
  'dropped',
  'duration_ms', // how long something took, in ms
  'endpoint',
  'endpoint_spiffe_id',
  'entries',
  'entry_id', // a registration entry ID
  'entry_id_prefix',
  'entry_id_prefix_cleanup',
  'err', // an Error object (pino serialises type, message, stack)
  'error', // an error as text (a peer's or library's message); an Error goes in `err`
  'event',
  'expires_at',
  'failovers', // how often the agent moved to another server
  'failures',
  'field',
  'file',
  'fingerprint',
  'from',
  'gc_interval_ms',
  'handler',
  'health_port',
  'host',
  'identity',
  'ignore_namespaces',
  'index',
  'informers',
  'inline',
  'issuer',
  'jwt',
  'key',
  'key_id',
  'keys',
  'keys_ms',
  'keys_path',
  'kid',
  'kind',
  'kty',
  'kube_api',
  'leader_elect',
  'leading',
  'lease',
  'legacy_dir',
  'local_authority_id',
  'lost',
  'message',
  'method',
  'name',
  'namespace',
  'node_alias',
  'node_attestor_type',
  'node_id',
  'not_after',
  'notifier',
  'old_agent_id',
  'op',
  'optional_apis',
  'path',
  'pid',
  'plugin_name',
  'pod',
  'pod_name',
  'pod_namespace',
  'pod_uid',
  'pods',
  'port',
  'ready',
  'reason', // why something was refused or skipped
  'rebalances', // how often rebalancing moved the agent to another server
  'reconcile',
  'reconcile_passes_per_min',
  'registration_socket_path',
  'remote_addr',
  'resource',
  'resource_version',
  'retry_in_ms', // when the next attempt is, in ms
  'retry_interval_ms',
  'role', // a console login's role (admin, viewer)
  'root',
  'server_address', // a server's host:port as the agent dials it
  'server_ms',
  'server_name',
  'servers', // how many servers answered (the agent's rebalancing check)
  'size',
  'slot',
  'socket_path',
  'spiffe_id', // a SPIFFE ID (spiffe://...)
  'spiffe_sequence',
  'spire_server_socket_path',
  'static_manifest_path',
  'status',
  'status_code',
  'status_message',
  'subsystem',
  'svids',
  'target_path',
  'target_session_attrs', // libpq's target_session_attrs of a postgres connection string
  'task',
  'total',
  'trust_domain', // a trust domain name
  'trust_domain_id',
  'type',
  'uid',
  'unmounted',
  'url',
  'urls',
  'user_agent',
  'validating_webhook_configuration_name',
  'version',
  'volume_id',
  'warning',
  'watch_classless',
  'webhook',
  'webhook_configuration',
  'webhook_port',
  'workload_api_socket_dir',
  'x509',
] as const;

/** A log field name of the table. */
export type LogField = (typeof LOG_FIELDS)[number];

const known: ReadonlySet<string> = new Set(LOG_FIELDS);

/** Whether `name` is a field name of the table. */
export function isLogField(name: string): name is LogField {
  return known.has(name);
}
