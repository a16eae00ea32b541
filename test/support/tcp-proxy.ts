import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder to the database that a test can break the ways a database goes away:
 * `cut` (every connection reset, new ones refused: a server that went down or restarts),
 * `stall` (connections stay open but nothing passes: a host or network that went silent).
 * `open` listens again on the same port, so the service reconnects to the same address.
 */
export class TcpProxy {
  private server: Server | undefined;
  private port = 0;
  private stalled = false;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  /** Listens (again, on the same port after a cut); resolves to the port. Ends a stall. */
  open(): Promise<number> {
    this.stalled = false;
    if (this.server) return Promise.resolve(this.port);
    const server = createServer((inbound) => {
      if (this.stalled) {
        // Accepted, never answered: the client waits for a server greeting that does not come.
        this.sockets.add(inbound);
        inbound.on('error', () => undefined).on('close', () => this.sockets.delete(inbound));
        return;
      }
      const outbound = connect(this.targetPort, this.host);
      for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as { port: number }).port;
        resolve(this.port);
      });
    });
  }

  /** Resets every connection and refuses new ones until `open`. */
  async cut(): Promise<void> {
    this.stalled = false;
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.resetAndDestroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  /** Nothing passes any more, in either direction, and new connections get no answer; no socket closes. */
  stall(): void {
    this.stalled = true;
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  /** Back to forwarding after a stall or a cut: stalled connections are reset (as a recovered network would find them). */
  async restore(): Promise<number> {
    await this.cut();
    return this.open();
  }

  close(): Promise<void> {
    return this.cut();
  }
}
