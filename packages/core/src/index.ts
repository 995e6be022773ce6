export { systemClock, sleepWith, unixSeconds } from './clock.ts';
export type { Clock, Cancel } from './clock.ts';
export {
  ZtwimError,
  isZtwimError,
  grpcCodeOf,
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
export { createLogger, silentLogger, parseLogLevel, LOG_LEVELS } from './log.ts';
export type { Logger, LoggerConfig, LogLevel } from './log.ts';
export { runTasks } from './task.ts';
export type { Task } from './task.ts';
export { cryptoRandom, randomAlnum, randomUuid } from './random.ts';
export type { Random } from './random.ts';
