import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

/** Structured JSON logger (pino). Messages are fixed text; values go in fields. */
export type Logger = PinoLogger;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(s: string): LogLevel | undefined {
  const l = s.toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(l) ? (l as LogLevel) : undefined;
}

export interface LoggerConfig {
  readonly level?: LogLevel;
  readonly name?: string;
  /** Where to write; defaults to stderr so stdout stays free for command output. */
  readonly destination?: DestinationStream;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const opts = {
    level: config.level ?? 'info',
    base: config.name === undefined ? {} : { component: config.name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pino(opts, config.destination ?? pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything (for tests and library defaults). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
