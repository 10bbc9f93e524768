/**
 * PostgreSQL for tests: the server of the whole run when scripts/test_all.ts started one (its URL in
 * {@link POSTGRES_URL_ENV}), else a server of this process's own, started on first use and stopped when
 * the process exits; and a fresh schema (or a whole database) on it for each test, so that tests stay
 * independent. Only 127.0.0.1 is ever reached.
 *
 * @module
 */
import process from "node:process";
import postgres from "postgres";
import {
  findPostgres,
  PASSWORD_ROLE,
  type PostgresServer,
  startPostgres,
} from "./fixtures/postgres_server.ts";

/** The environment variable that carries the run's server URL to the test processes. */
export const POSTGRES_URL_ENV = "PRISMQ_TEST_POSTGRES_URL";

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailable(): string | undefined {
  if (process.env[POSTGRES_URL_ENV]) return undefined;
  const found = findPostgres();
  return "unavailable" in found ? found.unavailable : undefined;
}

let own: Promise<PostgresServer> | undefined;

/** The superuser URL of the test server: the run's, or this process's own. */
export async function testServerUrl(): Promise<string> {
  const given = process.env[POSTGRES_URL_ENV];
  if (given) {
    const host = new URL(given).hostname;
    if (host !== "127.0.0.1") throw new Error(`${POSTGRES_URL_ENV} must name 127.0.0.1, not '${host}'.`);
    return given;
  }
  own ??= startPostgres();
  return (await own).url;
}

const admins = new Map<string, postgres.Sql>();
let counter = 0;

/** A small pool on `url`, one per URL for the whole process. */
function adminOn(url: string): postgres.Sql {
  let admin = admins.get(url);
  if (!admin) {
    admin = postgres(url, { max: 2, onnotice: false, unref_sockets: true, idle_timeout: 5 });
    admins.set(url, admin);
  }
  return admin;
}

/** A name no other test of this run uses. */
function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A database of its own on the test server, and the function that drops it (ending its sessions).
 *
 * @param owner the role that owns it (and so may create tables in it) @default the superuser
 */
export async function freshDatabase(owner?: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const server = await testServerUrl();
  const admin = adminOn(server);
  const name = uniqueName("t");
  await admin.unsafe(`CREATE DATABASE ${name}${owner === undefined ? "" : ` OWNER ${owner}`}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** The database every test schema lives in, made once per server. */
const SHARED_DATABASE = "prismq_tests";

/**
 * A schema of its own in a database the run's tests share, and the function that drops it: the URL sets
 * `search_path`, so a store on it sees its own tables only. A tenth of the cost of a database (creating one
 * copies a template and, with fsync on, writes it to disk), for tests that need no database to themselves.
 */
export async function freshSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const server = await testServerUrl();
  try {
    await adminOn(server).unsafe(`CREATE DATABASE ${SHARED_DATABASE}`);
  } catch (error) {
    // 42P04, or 23505 when the two meet in the catalog's index: another test process made it first.
    const code = (error as { code?: string }).code;
    if (code !== "42P04" && code !== "23505") throw error;
  }
  const url = new URL(server);
  url.pathname = `/${SHARED_DATABASE}`;
  const admin = adminOn(url.toString());
  const name = uniqueName("s");
  await admin.unsafe(`CREATE SCHEMA ${name}`);
  url.searchParams.set("search_path", name);
  return {
    url: url.toString(),
    drop: async () => {
      await admin.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    },
  };
}

/** The password of {@link PASSWORD_ROLE} on every test server: a distinctive word, for tests that look for it. */
export const ROLE_PASSWORD = "Sesame-7f3a-never-shown";

/**
 * The role that must log in with its password ({@link ROLE_PASSWORD}; every other role is trusted), made
 * on the test server on first use.
 */
async function passwordRole(): Promise<string> {
  try {
    await adminOn(await testServerUrl()).unsafe(
      `CREATE ROLE ${PASSWORD_ROLE} LOGIN PASSWORD '${ROLE_PASSWORD}'`,
    );
  } catch (error) {
    // 42710, or 23505 when made at the same moment: another test process made it first.
    if (!["42710", "23505"].includes((error as { code?: string }).code ?? "")) throw error;
  }
  return PASSWORD_ROLE;
}

/**
 * A database of its own owned by {@link PASSWORD_ROLE}: its URL names that role and no password (give
 * {@link ROLE_PASSWORD} in it, or in `PGPASSWORD`), and the function that drops it.
 */
export async function passwordRoleDatabase(): Promise<
  { url: string; role: string; drop: () => Promise<void> }
> {
  const role = await passwordRole();
  const { url, drop } = await freshDatabase(role);
  const parsed = new URL(url);
  parsed.username = role;
  return { url: parsed.toString(), role, drop };
}
