import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

/** How long, and how many more bytes, a refused upload is read and discarded after the response. */
export const LINGER_MS = 2_000;
export const LINGER_BYTES = 16 * 1024 * 1024;

type ClosableSocket = Socket & { destroySoon?: () => void };

const lingering = new WeakSet<Socket>();

/** True when the request announced a body (RFC 9112 §6.3) that has not been read to its end. */
function bodyUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Replaces what Node's HTTP server does once the response of a `Connection: close` exchange is written
 * (`socket.destroySoon()`: FIN, then close at once). Closing with upload bytes unread makes the kernel send
 * RST, and a client still sending gets EPIPE/ECONNRESET, often before it reads the response. Instead: FIN
 * (half-close), keep reading and discarding until the upload ends, the client closes, or `ms` / `bytes`
 * run out, then close (RFC 9112 §9.6).
 */
function lingerOnClose(socket: ClosableSocket, req: IncomingMessage, ms: number, bytes: number): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
    let seen = 0;
    const close = () => {
      socket.removeListener('data', count);
      req.removeListener('end', close);
      socket.removeListener('end', close);
      // Everything sent has been read: closing now cannot reset. Wait for our FIN to be written first (the
      // timer still bounds that, for a client that reads nothing).
      if (socket.writableFinished || socket.destroyed) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    };
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > bytes) socket.destroy();
    };
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    if (req.complete) return close();
    req.once('end', close); // the rest of the body arrived (the parser discards it)
    socket.once('end', close); // the client closed its side
    // A 'data' listener takes the socket back from the HTTP parser's native reading (Node's "unconsume"), and
    // with it the listener that restarts reading on resume: the unread body may have stopped it, so restart
    // it as that listener would have.
    socket.on('data', count);
    const handle = (socket as unknown as { _handle?: { reading?: boolean; readStart?: () => number } })._handle;
    if (handle?.readStart && !handle.reading) {
      handle.reading = true;
      handle.readStart();
    }
  };
}

/**
 * Lingering close for every response sent before its request body was read to the end (401 from the auth
 * hook, 404, 406, 413, 415...): the response says `Connection: close`, and the connection is half-closed
 * and drained for at most `LINGER_MS` and `LINGER_BYTES` so that any client can read why it was refused.
 */
export const lingeringClosePlugin = fp(
  async (app: FastifyInstance, opts: { ms?: number; bytes?: number } = {}) => {
    const ms = opts.ms ?? LINGER_MS;
    const bytes = opts.bytes ?? LINGER_BYTES;
    app.addHook('onSend', (req, reply, payload, done) => {
      const raw = req.raw;
      if (bodyUnread(raw) && raw.socket) {
        reply.header('Connection', 'close');
        lingerOnClose(raw.socket, raw, ms, bytes);
      }
      done(null, payload);
    });
  },
  { name: 'lingering-close' },
);
