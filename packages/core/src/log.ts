import { writeSync } from 'node:fs';
import { pino, type Logger as PinoLogger, type DestinationStream, type Bindings, type ChildLoggerOptions } from 'pino';

/** Structured logger (pino). Messages are fixed text; values go in fields. */
export type Logger = PinoLogger;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `json`: one JSON object a line (pino); `text`: logfmt lines as SPIRE's `log_format = "text"` (logrus). */
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function parseLogLevel(s: string): LogLevel | undefined {
  const l = s.toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(l) ? (l as LogLevel) : undefined;
}

/** `json` or `text` in any case (SPIRE's `log_format` values); undefined for anything else. */
export function parseLogFormat(s: string): LogFormat | undefined {
  const f = s.toLowerCase();
  return (LOG_FORMATS as readonly string[]).includes(f) ? (f as LogFormat) : undefined;
}

export interface LoggerConfig {
  readonly level?: LogLevel;
  readonly name?: string;
  /** Default `json`. */
  readonly format?: LogFormat;
  /** Where to write; defaults to stderr so stdout stays free for command output. */
  readonly destination?: DestinationStream;
}

// The fields logrus' TextFormatter puts first; the others follow sorted by name.
const FIRST_FIELDS = ['time', 'level', 'msg'];
const BARE_VALUE = /^[\w\-.\/@^+]+$/;

function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return BARE_VALUE.test(s) ? s : JSON.stringify(s);
}

/**
 * A pino JSON line as a logfmt line, `time=... level=info msg="..." key=value` in logrus'
 * TextFormatter order (what SPIRE prints with `log_format = "text"`). Written here rather than
 * with pino-pretty, whose output is not logrus' format.
 */
export function jsonLogLineToText(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const keys = [
    ...FIRST_FIELDS.filter((k) => k in rec),
    ...Object.keys(rec)
      .filter((k) => !FIRST_FIELDS.includes(k))
      .sort(),
  ];
  return `${keys.map((k) => `${k}=${logfmtValue(rec[k])}`).join(' ')}\n`;
}

function textDestination(out: DestinationStream | undefined): DestinationStream {
  return {
    write(line: string): void {
      const text = jsonLogLineToText(line);
      if (out === undefined) writeSync(2, text);
      else out.write(text);
    },
  };
}

/**
 * Makes `logger.child(b)` a child of `root` with the parent's bindings and `b` merged into one
 * object: pino appends each child's bindings as they come, so a child of a child repeats a key
 * (`"subsystem":"server","subsystem":"ca_manager"`) and a JSON reader keeps an arbitrary one.
 */
function mergeChildBindings(root: PinoLogger, logger: PinoLogger): PinoLogger {
  const child = (bindings: Bindings, options?: ChildLoggerOptions): PinoLogger =>
    mergeChildBindings(root, root.child({ ...logger.bindings(), ...bindings }, { level: logger.level, ...options }));
  logger.child = child as unknown as PinoLogger['child'];
  return logger;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const opts = {
    level: config.level ?? 'info',
    base: {},
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const destination = config.format === 'text' ? textDestination(config.destination) : (config.destination ?? pino.destination({ fd: 2, sync: true }));
  const root = pino(opts, destination);
  return mergeChildBindings(root, root.child(config.name === undefined ? {} : { component: config.name }));
}

/** A logger that drops everything (for tests and library defaults). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
