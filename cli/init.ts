/**
 * `cell init`: lays out `$CELL_HOME` and gives this node its Ed25519 identity.
 *
 * ```text
 * $CELL_HOME/            0700
 *   config.json          { node_id, public_key, created_at, version }
 *   run/                 0700  sockets of the cells served here
 *   logs/  state/        0700
 *   identity/            0700
 *     node.key           0600  private key, PKCS#8 PEM
 *     node.pub           0644  public key, SPKI PEM
 * ```
 *
 * @module
 */
import { join } from "node:path";
import type { Command } from "commander";
import { cellHome, ensurePrivateDir } from "@cell/sdk";
import {
  act,
  compactJson,
  type Context,
  EXIT_FAILURE,
  EXIT_OK,
  homeOf,
  UsageError,
} from "./_common.ts";
import { VERSION } from "./version.ts";

/** Options of {@linkcode initHome}. */
export interface InitOptions {
  /** This node's id: a non-negative integer, unique among the nodes that work together. */
  nodeId: number;
  /**
   * The directory to set up.
   * @default {cellHome()}
   */
  home?: string;
  /**
   * Change the node id of a home initialized with another one (the key is kept).
   * @default {false}
   */
  force?: boolean;
  /**
   * Replace the identity key pair with a fresh one. The old private key is deleted.
   * @default {false}
   */
  newKey?: boolean;
}

/** What {@linkcode initHome} did. */
export interface InitResult {
  /** The home directory. */
  home: string;
  /** The node id now in `config.json`. */
  nodeId: number;
  /** The public key: its 32 raw bytes, base64url without padding. */
  publicKey: string;
  /** Whether a key pair was generated (false when the existing one was kept). */
  created: boolean;
  /** The node id `config.json` had before, when this run changed it. */
  previousNodeId?: number;
}

/** The contents of `$CELL_HOME/config.json`. */
export interface NodeConfig {
  /** This node's id. */
  node_id: number;
  /** The node's public key: its 32 raw bytes, base64url without padding. */
  public_key: string;
  /** When the home was first initialized, ISO 8601. */
  created_at: string;
  /** Version of the CLI that last wrote the file. */
  version: string;
}

/** Refusal to change an initialized home without `force`: exit code 1. */
export class InitConflictError extends Error {
  /** Creates the error; `message` says how to go on (`--force`). */
  constructor(message: string) {
    super(message);
    this.name = "InitConflictError";
  }
}

/**
 * Checks a `--node-id` value: a non-negative integer, written in decimal digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNodeId } from "@cell/cli";
 * assert.ok(parseNodeId("7") === 7);
 * ```
 */
export function parseNodeId(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(
      `Node id ${JSON.stringify(text)} is invalid: use a non-negative integer, like --node-id 1`,
    );
  }
  return n;
}

/**
 * Creates the Cell home layout and this node's identity, or checks and keeps what is there.
 * Running it again with the same node id changes nothing; with another node id it throws
 * {@linkcode InitConflictError} unless `force` is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initHome } from "@cell/cli";
 * const home = await Deno.makeTempDir();
 * const first = await initHome({ nodeId: 1, home });
 * const again = await initHome({ nodeId: 1, home });
 * assert.ok(first.created && !again.created && first.publicKey === again.publicKey);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function initHome(options: InitOptions): Promise<InitResult> {
  const { nodeId } = options;
  if (!Number.isSafeInteger(nodeId) || nodeId < 0) {
    throw new RangeError(`Node id ${nodeId} is invalid: use a non-negative integer`);
  }
  const home = options.home ?? cellHome();
  const configPath = join(home, "config.json");
  const config = await readConfig(configPath);
  if (config && config.node_id !== nodeId && !options.force) {
    throw new InitConflictError(
      `${home} is already initialized as node ${config.node_id}, not ${nodeId}: ` +
        `run 'cell init --node-id ${nodeId} --force' to change the node id (the key is kept)`,
    );
  }
  for (const dir of ["", "run", "logs", "state", "identity"]) {
    await ensurePrivateDir(join(home, dir));
  }
  const keyPath = join(home, "identity", "node.key");
  const pubPath = join(home, "identity", "node.pub");
  let privateKey = options.newKey ? undefined : await readPrivateKey(keyPath);
  const created = privateKey === undefined;
  if (privateKey === undefined) {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    privateKey = pair.privateKey;
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey));
    await writeAtomic(keyPath, pem("PRIVATE KEY", pkcs8), 0o600);
  }
  const publicKey = await publicKeyOf(privateKey);
  const spki = pem("PUBLIC KEY", await spkiOf(publicKey));
  if (await Deno.readTextFile(pubPath).catch(() => undefined) !== spki) {
    await writeAtomic(pubPath, spki, 0o644);
  }
  const raw = publicKey.toBase64({ alphabet: "base64url", omitPadding: true });
  if (!config || config.node_id !== nodeId || config.public_key !== raw) {
    const next: NodeConfig = {
      node_id: nodeId,
      public_key: raw,
      created_at: config?.created_at ?? new Date().toISOString(),
      version: VERSION,
    };
    await writeAtomic(configPath, `${JSON.stringify(next, null, 2)}\n`, 0o644);
  }
  return {
    home,
    nodeId,
    publicKey: raw,
    created,
    ...(config && config.node_id !== nodeId ? { previousNodeId: config.node_id } : {}),
  };
}

/** The file's text, or `undefined` when it does not exist. */
async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function readConfig(path: string): Promise<NodeConfig | undefined> {
  const text = await readIfExists(path);
  if (text === undefined) return undefined;
  let parsed: Partial<NodeConfig>;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}): fix or delete it`);
  }
  if (typeof parsed?.node_id !== "number") {
    throw new Error(`${path} has no numeric node_id: fix or delete it`);
  }
  return parsed as NodeConfig;
}

async function readPrivateKey(path: string): Promise<CryptoKey | undefined> {
  const text = await readIfExists(path);
  if (text === undefined) return undefined;
  try {
    return await crypto.subtle.importKey(
      "pkcs8",
      unpem("PRIVATE KEY", text),
      { name: "Ed25519" },
      true,
      ["sign"],
    );
  } catch (e) {
    throw new Error(
      `${path} is not an Ed25519 private key in PKCS#8 PEM (${(e as Error).message}): ` +
        "restore it, or run 'cell init' with --new-key to replace it",
    );
  }
}

/** The 32 raw bytes of the public half of an Ed25519 private key. */
async function publicKeyOf(privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  if (typeof jwk.x !== "string") throw new Error("The private key does not carry its public key");
  return Uint8Array.fromBase64(jwk.x, { alphabet: "base64url" });
}

async function spkiOf(raw: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, true, ["verify"]);
  return new Uint8Array(await crypto.subtle.exportKey("spki", key));
}

function pem(label: string, der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function unpem(label: string, text: string): Uint8Array<ArrayBuffer> {
  const match = text.match(
    new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`),
  );
  if (!match) throw new Error(`no '${label}' PEM block`);
  return Uint8Array.fromBase64(match[1]!.replace(/\s+/g, ""));
}

/** Writes `path` so that readers see the old file or the whole new one, never a part. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(temp, text, { mode, createNew: true });
    await Deno.chmod(temp, mode); // the umask may have taken bits away from 0644
    const file = await Deno.open(temp, { read: true });
    try {
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}

/** Flags of `cell init`. */
interface InitFlags {
  nodeId: string;
  force?: boolean;
  newKey?: boolean;
  json?: boolean;
}

/** Adds `cell init` to `program`. */
export function registerInit(program: Command, ctx: Context): void {
  program
    .command("init")
    .summary("create $CELL_HOME and this node's Ed25519 identity")
    .description(
      "Create the Cell home ($CELL_HOME, default ~/.cell) with run/, logs/, state/ and " +
        "identity/ (all 0700), this node's Ed25519 key pair (identity/node.key, PKCS#8 PEM, " +
        "0600; identity/node.pub, SPKI PEM) and config.json.\n\n" +
        "Safe to run again: with the same node id it keeps everything and says so. With another " +
        "node id it refuses unless --force, which changes the node id and keeps the key. " +
        "--new-key replaces the key pair (the old private key is deleted).",
    )
    .requiredOption("-n, --node-id <id>", "this node's id, a non-negative integer")
    .option("-f, --force", "change the node id of an already initialized home")
    .option("--new-key", "replace the identity key pair with a new one")
    .option("--json", "print one JSON object: {home, node_id, public_key, created}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell init --node-id 1
  $ CELL_HOME=/srv/cell cell init --node-id 7 --json
  $ cell init --node-id 2 --force        # renumber this node, keep its key
  $ cell init --node-id 2 --new-key      # rotate the key pair`,
    )
    .action((flags: InitFlags) =>
      act(ctx, { json: flags.json }, async () => {
        const nodeId = parseNodeId(flags.nodeId);
        let result: InitResult;
        try {
          result = await initHome({
            nodeId,
            home: homeOf(ctx),
            force: flags.force === true,
            newKey: flags.newKey === true,
          });
        } catch (e) {
          if (!(e instanceof InitConflictError)) throw e;
          if (flags.json) {
            ctx.io.stdout(compactJson({ error: { code: "ALREADY_EXISTS", message: e.message } }));
          } else ctx.io.stderr(`error: ${e.message}\n`);
          return EXIT_FAILURE;
        }
        printInit(ctx, result, flags.json === true);
        return EXIT_OK;
      })
    );
}

function printInit(ctx: Context, result: InitResult, json: boolean): void {
  const { home, nodeId, publicKey, created, previousNodeId } = result;
  if (json) {
    ctx.io.stdout(compactJson({ home, node_id: nodeId, public_key: publicKey, created }));
    return;
  }
  const lines = created
    ? [
      `Initialized ${home} as node ${nodeId}`,
      `  identity/node.key  new Ed25519 private key (0600)`,
      `  identity/node.pub  public key ${publicKey}`,
      `  run/ logs/ state/  (0700)`,
      `  config.json`,
    ]
    : previousNodeId !== undefined
    ? [
      `Changed node id of ${home} from ${previousNodeId} to ${nodeId}`,
      `  kept the identity key ${publicKey}`,
    ]
    : [
      `${home} is already initialized as node ${nodeId}`,
      `  kept the identity key ${publicKey}`,
    ];
  ctx.io.stdout(`${lines.join("\n")}\n`);
}
