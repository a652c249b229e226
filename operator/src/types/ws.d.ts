// The few parts of the `ws` package (a dependency of @kubernetes/client-node) this project uses;
// the package ships no types and @types/ws is not installed.
declare module 'ws' {
  import type { EventEmitter } from 'node:events';
  import type { ClientRequest, IncomingMessage } from 'node:http';

  interface ClientOptions extends Pick<import('node:tls').SecureContextOptions, 'ca' | 'cert' | 'key'> {
    headers?: Record<string, string>;
    rejectUnauthorized?: boolean;
  }

  class WebSocket extends EventEmitter {
    constructor(url: string, protocols?: string | string[], options?: ClientOptions);
    readonly protocol: string;
    send(data: Buffer, callback?: (error?: Error) => void): void;
    pause(): void;
    resume(): void;
    close(code?: number): void;
    terminate(): void;
    on(event: 'open', listener: () => void): this;
    on(event: 'message', listener: (data: Buffer) => void): this;
    on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
    on(event: 'unexpected-response', listener: (request: ClientRequest, response: IncomingMessage) => void): this;
  }
  interface ServerOptions {
    server: import('node:http').Server | import('node:https').Server;
    handleProtocols?: (protocols: Set<string>) => string | false;
  }

  /** The server side, used by tests that stand in for an apiserver's exec endpoint. */
  export class WebSocketServer extends EventEmitter {
    constructor(options: ServerOptions);
    close(): void;
    on(event: 'connection', listener: (socket: WebSocket) => void): this;
  }
  export default WebSocket;
}
