import { connect, createServer, type Server, type Socket } from 'node:net';

// A loopback TCP proxy that injects network faults between two parties, per direction:
// - blackhole: bytes are held, as a partitioned network holds TCP retransmissions; they flow again
//   on heal (if the endpoints have not given up on the connection by then);
// - delay: bytes are delivered late, in order;
// - refuse: the listener closes and every open connection is reset (a dead endpoint).
// testbed/tcp-proxy.ts does only the last; this one keeps the same port across all of them.

export type Direction = 'both' | 'to-target' | 'from-target';
type Link = { kind: 'pass' } | { kind: 'blackhole' } | { kind: 'delay'; ms: number };

interface Pipe {
  dest: Socket;
  held: Buffer[];
  lastRelease: number;
}

export class FaultProxy {
  readonly host = '127.0.0.1';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly pipes = { 'to-target': new Set<Pipe>(), 'from-target': new Set<Pipe>() };
  private links: Record<'to-target' | 'from-target', Link> = { 'to-target': { kind: 'pass' }, 'from-target': { kind: 'pass' } };

  private constructor(
    private readonly target: { host: string; port: number },
    public port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, 0);
    await proxy.listen();
    return proxy;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Holds bytes in the given direction(s) until heal(). */
  blackhole(direction: Direction = 'both'): void {
    for (const d of this.directions(direction)) this.links[d] = { kind: 'blackhole' };
  }

  /** Delivers bytes in the given direction(s) `ms` late. */
  delay(ms: number, direction: Direction = 'both'): void {
    for (const d of this.directions(direction)) this.links[d] = { kind: 'delay', ms };
  }

  /** Back to normal: held bytes flow in order. Listens again after refuse(). */
  async heal(): Promise<void> {
    this.links = { 'to-target': { kind: 'pass' }, 'from-target': { kind: 'pass' } };
    for (const set of Object.values(this.pipes)) {
      for (const pipe of set) for (const chunk of pipe.held.splice(0)) if (!pipe.dest.destroyed) pipe.dest.write(chunk);
    }
    if (!this.server) await this.listen();
  }

  /** Closes the listener and resets every connection, as a stopped endpoint would. */
  async refuse(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async stop(): Promise<void> {
    await this.refuse();
  }

  private directions(d: Direction): ('to-target' | 'from-target')[] {
    return d === 'both' ? ['to-target', 'from-target'] : [d];
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((client) => this.accept(client));
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        const address = server.address();
        if (address && typeof address === 'object') this.port = address.port;
        this.server = server;
        resolve();
      });
    });
  }

  private accept(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    for (const sock of [client, upstream]) {
      this.sockets.add(sock);
      sock.on('error', () => (client.destroy(), upstream.destroy()));
      sock.on('close', () => {
        this.sockets.delete(sock);
        client.destroy();
        upstream.destroy();
      });
    }
    this.forward(client, upstream, 'to-target');
    this.forward(upstream, client, 'from-target');
  }

  private forward(from: Socket, dest: Socket, direction: 'to-target' | 'from-target'): void {
    const pipe: Pipe = { dest, held: [], lastRelease: 0 };
    this.pipes[direction].add(pipe);
    from.on('close', () => this.pipes[direction].delete(pipe));
    from.on('data', (chunk: Buffer) => {
      const link = this.links[direction];
      if (link.kind === 'blackhole') return void pipe.held.push(chunk);
      if (link.kind === 'delay') {
        const at = Math.max(Date.now() + link.ms, pipe.lastRelease);
        pipe.lastRelease = at;
        setTimeout(() => dest.destroyed || dest.write(chunk), at - Date.now());
        return;
      }
      dest.write(chunk);
    });
  }
}
