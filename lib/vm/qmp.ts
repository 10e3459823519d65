/**
 * A minimal QMP client over a connected socket (QEMU's `-mon chardev=...,mode=control`): the
 * greeting, `qmp_capabilities`, commands matched to their answers by id, and events to listeners.
 */
import type { Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${desc} (${errorClass})`);
    this.name = 'QmpError';
  }
}

export class QmpClient {
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending & { command: string }>();
  readonly #listeners = new Set<(e: QmpEvent) => void>();
  #buffer = '';
  #nextId = 1;
  #closed = false;
  /** Resolves once the greeting came and capabilities were negotiated. */
  readonly ready: Promise<void>;

  constructor(socket: Socket) {
    this.#socket = socket;
    let greeted: () => void;
    const greeting = new Promise<void>((r) => (greeted = r));
    socket.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, nl).trim();
        this.#buffer = this.#buffer.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('QMP' in msg) greeted();
        else if ('event' in msg) for (const l of [...this.#listeners]) l(msg as unknown as QmpEvent);
        else if (typeof msg.id === 'number') {
          const p = this.#pending.get(msg.id);
          if (!p) continue;
          this.#pending.delete(msg.id);
          if ('error' in msg) {
            const e = msg.error as { class?: string; desc?: string };
            p.reject(new QmpError(p.command, e.class ?? 'GenericError', e.desc ?? 'failed'));
          } else p.resolve(msg.return);
        }
      }
    });
    const fail = () => {
      this.#closed = true;
      for (const p of this.#pending.values()) p.reject(new Error(`QMP ${p.command}: the QEMU monitor closed`));
      this.#pending.clear();
    };
    socket.on('close', fail);
    socket.on('error', fail);
    this.ready = greeting.then(() => this.execute('qmp_capabilities').then(() => undefined));
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error(`QMP ${command}: the QEMU monitor is closed`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, command });
      this.#socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
