import type pg from 'pg';

const handled = new WeakSet<pg.ClientBase>();

/**
 * node-postgres emits 'error' on a client whose connection dies (a server restart or failover,
 * pg_terminate_backend, a network cut) whether it is idle in the pool, checked out for a transaction, or held
 * apart for an advisory lock, a cursor or a COPY; an 'error' event with no listener ends the process. Every
 * client gets this listener when it is made. The query in flight, if any, fails on its own (and its request
 * answers 503); later queries fail at once; a pool discards the client when it is released. So the listener
 * only reports the loss, once per client (the 'end' that follows repeats it).
 */
export function handleConnectionLoss<C extends pg.ClientBase>(client: C, onLost?: (err: Error) => void): C {
  if (handled.has(client)) return client;
  handled.add(client);
  let reported = false;
  client.on('error', (err: Error) => {
    if (reported) return;
    reported = true;
    onLost?.(err);
  });
  return client;
}
