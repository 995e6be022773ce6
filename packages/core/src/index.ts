export { systemClock, sleepWith, unixSeconds } from './clock.ts';
export type { Clock, Cancel } from './clock.ts';
export {
  ZtwimError,
  isZtwimError,
  grpcCodeOf,
  grpcCodeOfError,
  errnoOf,
  asError,
  ERROR_CODES,
  invalidArgument,
  notFound,
  alreadyExists,
  permissionDenied,
  failedPrecondition,
  internal,
  unavailable,
  configError,
} from './errors.ts';
export type { ErrorCode, ZtwimErrorOptions } from './errors.ts';
export { createLogger, silentLogger, parseLogLevel, parseLogFormat, jsonLogLineToText, LOG_LEVELS, LOG_FORMATS } from './log.ts';
export type { Logger, LoggerConfig, LogLevel, LogFormat } from './log.ts';
export { runTasks, every, Wakeup, untilAborted, closeOnAbort } from './task.ts';
export type { Task, EveryOptions } from './task.ts';
export { cryptoRandom, randomAlnum, randomUuid } from './random.ts';
export type { Random } from './random.ts';
export {
  parseHcl,
  HclSyntaxError,
  loadConfigFile,
  loadYamlSupport,
  expandEnv,
  parseConfigText,
  formatOf,
  Section,
  problems,
  throwIfProblems,
  parseDuration,
  toPlain,
} from './config/index.ts';
export type { ConfigFormat, LoadConfigOptions, Problems, ConfigValue, ConfigEntry, ConfigObject } from './config/index.ts';
export {
  marshalX509PopPayload,
  parseX509PopPayload,
  marshalX509PopChallenge,
  parseX509PopChallenge,
  answerX509PopChallenge,
  verifyX509PopResponse,
  sha1Fingerprint,
  X509POP_NONCE_SIZE,
} from './attestation/x509pop.ts';
export type { X509PopPayload, X509PopChallenge } from './attestation/x509pop.ts';
export { marshalK8sPsatPayload, parseK8sPsatPayload } from './attestation/k8s-psat.ts';
export type { K8sPsatPayload } from './attestation/k8s-psat.ts';
export { NO_METRICS, loadMetrics } from './telemetry/metrics-sink.ts';
export type { Metrics } from './telemetry/metrics-sink.ts';
export type { PrometheusMetrics } from './telemetry/metrics.ts';
export { LOG_FIELDS, isLogField } from './telemetry/names.ts';
export type { LogField } from './telemetry/names.ts';
export { ZTWIM_VERSION } from './version.ts';
export { lockDataDir, dataDirHolder, DATA_DIR_LOCK_FILE } from './data-dir-lock.ts';
export type { DataDirLock, LockDataDirOptions } from './data-dir-lock.ts';
export { listenError, SOCKET_IN_USE } from './net/listen-error.ts';
export { listenTcp } from './net/listen.ts';
export { readHealthChecks, serveHealthChecks } from './net/health-listener.ts';
export type { HealthChecksConfig, HealthListener, Probe, ProbeResult } from './net/health-listener.ts';
export type { ListenerInfo } from './net/listen-error.ts';
export { findSocketHolder } from './net/listener-holder.ts';
export type { SocketHolder, ListenerAddress } from './net/listener-holder.ts';
export { spiffeIdFromWire, spiffeIdToWire, wireSpiffeIdString, trustDomainIdString } from './wire/spiffe-id.ts';
export type { WireSpiffeId } from './wire/spiffe-id.ts';
export {
  jwkFromSpki,
  jwkFromKey,
  spkiFromKey,
  jwtAuthorityToWire,
  bundleToWire,
  x509AuthoritiesDer,
  jwtAuthoritiesToJwks,
  jwksDocument,
  x509BundleFromWire,
  jwtBundleFromWire,
  spiffeBundleFromWire,
  spiffeBundleToWire,
} from './wire/bundle.ts';
export type { WireBundle, WireBundleInit, WireX509Authority, WireJwtAuthority, JwtAuthorityKey, JwksOptions } from './wire/bundle.ts';
export { atomicWriteFile, syncDir, TEMP_PREFIX } from './fs/atomic-write.ts';
