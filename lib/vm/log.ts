/**
 * Harness messages on stderr: stage lines ("dma-iommu vm: ..."), periodic progress, verbose notes.
 * COMMAND's own stdout/stderr never go through this.
 */
export interface VmLogger {
  /** A stage line, always shown (installs, downloads, kernel builds: things that take time). */
  stage(message: string): void;
  /** A progress line (elapsed time, percent), always shown. */
  progress(message: string): void;
  /** Only with --verbose. */
  note(message: string): void;
}

export interface LoggerOptions {
  verbose?: boolean;
  quiet?: boolean;
  write?: (text: string) => void;
}

export function createLogger(options: LoggerOptions = {}): VmLogger {
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  const line = (text: string) => write(`dma-iommu vm: ${text}\n`);
  return {
    stage: (m) => (options.quiet ? undefined : line(m)),
    progress: (m) => (options.quiet ? undefined : line(m)),
    note: (m) => (options.verbose ? line(m) : undefined),
  };
}

/** A logger that drops everything (programmatic use without output). */
export const silentLogger: VmLogger = { stage() {}, progress() {}, note() {} };

/** "1m05s" style duration. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
