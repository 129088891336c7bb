/**
 * How an instance is launched: the cell manifest (`cell.json`), the Deno permission flags it
 * grants, and the bubblewrap sandbox (the seed's Capsid) around the process.
 *
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { type CellManifest, isUrlModule } from "./manifest.ts";

export {
  type CellManifest,
  loadManifest,
  type ManifestPermissions,
  resolveModule,
} from "./manifest.ts";

/** Everything needed to start one instance. */
export interface LaunchPlan {
  /** Program and arguments. */
  command: string;
  args: string[];
  /** The complete environment (nothing else is inherited). */
  env: Record<string, string>;
  /** Working directory: the instance's data directory. */
  cwd: string;
  /** `"bwrap"` or `"none"`. */
  sandbox: "bwrap" | "none";
  /** The Deno permission flags. */
  permissions: string[];
}

/** What {@linkcode launchPlan} needs to know about one instance. */
export interface LaunchOptions {
  home: string;
  nodeId: string;
  cell: string;
  instanceId: string;
  /** Absolute module path, or a URL. */
  module: string;
  args: string[];
  /** `false` runs without bubblewrap. */
  sandbox: boolean;
  manifest: CellManifest;
  /** Instance ids of the cells it calls are `<cell>-<n>` for `n` below this. */
  maxInstances: number;
}

let bwrapPath: string | null | undefined;

/** The bubblewrap binary on `PATH` (or in `/usr/bin`), or `undefined` when not installed. */
export function findBwrap(): string | undefined {
  if (bwrapPath === undefined) {
    bwrapPath = null;
    const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(isAbsolute).concat("/usr/bin");
    for (const dir of dirs) {
      try {
        if (Deno.statSync(join(dir, "bwrap")).isFile) {
          bwrapPath = join(dir, "bwrap");
          break;
        }
      } catch {
        // Not here.
      }
    }
  }
  return bwrapPath ?? undefined;
}

let bwrapProblem: Promise<string | undefined> | undefined;

/**
 * Why bubblewrap cannot sandbox here (it is installed, but cannot create namespaces: user
 * namespaces disabled, or restricted by AppArmor), or `undefined` when it works or is absent.
 * Tried once per process.
 */
export function sandboxProblem(): Promise<string | undefined> {
  bwrapProblem ??= (async () => {
    const bwrap = findBwrap();
    if (!bwrap) return undefined;
    try {
      const out = await new Deno.Command(bwrap, {
        args: ["--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
        stdout: "null",
        stderr: "piped",
        clearEnv: true,
      }).output();
      return out.success
        ? undefined
        : new TextDecoder().decode(out.stderr).trim() || `exit ${out.code}`;
    } catch (e) {
      return (e as Error).message;
    }
  })();
  return bwrapProblem;
}

let denoDir: Promise<string | undefined> | undefined;

/** Deno's cache directory (`deno info --json`), bound read-only so npm dependencies resolve. */
export function findDenoDir(): Promise<string | undefined> {
  denoDir ??= (async () => {
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["info", "--json"],
        stdout: "piped",
        stderr: "null",
        env: { NO_COLOR: "1" },
      }).output();
      return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir?: string }).denoDir;
    } catch {
      return undefined;
    }
  })();
  return denoDir;
}

/** Where the shared-memory ring keeps its built library: `${XDG_CACHE_HOME:-$HOME/.cache}/cell`. */
export function ringCacheDir(): string | undefined {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  if (xdg) return join(xdg, "cell");
  return home ? join(home, ".cache", "cell") : undefined;
}

/** The directory whose `deno.json` rules the module: the outermost one above it (a workspace). */
export function projectRoot(module: string): string {
  let root = dirname(module);
  for (let d = root;; d = dirname(d)) {
    if (exists(join(d, "deno.json")) || exists(join(d, "deno.jsonc"))) root = d;
    if (dirname(d) === d) return root;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The data directory of one instance: `<home>/data/<cell>/<instance>`. */
export function dataDir(home: string, cell: string, instanceId: string): string {
  return join(home, "data", cell, instanceId);
}

/** Unix socket paths a cell's instances serve on, as engineer C's SDK names them. */
function socketNames(run: string, cell: string, ids: string[]): string[] {
  const names = [`${cell}.sock`, `${cell}.ring`];
  for (const id of ids) names.push(`${cell}@${id}.sock`, `${cell}@${id}.ring`);
  return names.map((n) => `unix:${join(run, n)}`);
}

/**
 * The Deno permission flags of an instance: what the SDK needs (its sockets and the nucleus's,
 * `$CELL_HOME/run`, its data directory, the module's project, Deno's cache, the ring library)
 * plus what the manifest declares, and nothing else.
 */
export function permissionFlags(options: LaunchOptions, deno: {
  denoDir?: string;
  ringCache?: string;
}): string[] {
  const { home, cell, instanceId, manifest } = options;
  const perms = manifest.permissions ?? {};
  const run = join(home, "run");
  const data = dataDir(home, cell, instanceId);
  const expand = (p: string) =>
    p.replace(/^\$CELL_HOME/, home).replace(/^\$CELL_DATA/, data).replace(
      /^\$MODULE_DIR/,
      isUrlModule(options.module) ? "/nonexistent" : dirname(options.module),
    );
  const project = isUrlModule(options.module) ? [] : [projectRoot(options.module)];
  const read = [run, data, ...project, deno.denoDir, deno.ringCache, "/dev/shm"]
    .concat((perms.read ?? []).map(expand))
    .filter((p): p is string => !!p);
  const write = [run, data, "/dev/shm", ...(perms.write ?? []).map(expand)];
  const env = [...ENV_NAMES, ...(perms.env ?? [])];
  const sockets = [...socketNames(run, "nucleus", []), ...socketNames(run, cell, [instanceId])];
  for (const other of manifest.calls ?? []) {
    const otherIds = Array.from({ length: options.maxInstances }, (_, n) => `${other}-${n}`);
    sockets.push(...socketNames(run, other, otherIds));
  }
  const flags = ["--no-prompt"];
  if (perms.net === true) flags.push("--allow-net");
  else flags.push(`--allow-net=${[...(perms.net || []), ...sockets].join(",")}`);
  flags.push(`--allow-read=${unique(read).join(",")}`);
  flags.push(`--allow-write=${unique(write).join(",")}`);
  flags.push(`--allow-env=${unique(env).join(",")}`);
  if (perms.ffi !== false && deno.ringCache) flags.push(`--allow-ffi=${deno.ringCache}`);
  if (perms.sys === true) flags.push("--allow-sys");
  else if (perms.sys) flags.push(`--allow-sys=${perms.sys.join(",")}`);
  return flags;
}

/** Environment variables every instance gets (and may read). */
const ENV_NAMES = [
  "CELL_HOME",
  "CELL_INSTANCE_ID",
  "CELL_NODE_ID",
  "CELL_DATA_DIR",
  "HOME",
  "TMPDIR",
  "NO_COLOR",
  "XDG_CACHE_HOME",
  "CELL_SHM",
  "CELL_NUCLEUS",
];

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/**
 * The command, environment and flags that start one instance, inside bubblewrap when it is
 * installed and `options.sandbox` is not `false`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { launchPlan } from "./sandbox.ts";
 * const plan = await launchPlan({
 *   home: "/tmp/cell-doc", nodeId: "n1", cell: "probe", instanceId: "probe-0",
 *   module: new URL("./testdata/probe/probe.ts", import.meta.url).pathname, args: [],
 *   sandbox: false, manifest: {}, maxInstances: 2,
 * });
 * assert.ok(plan.sandbox === "none" && plan.env.CELL_INSTANCE_ID === "probe-0");
 * ```
 */
export async function launchPlan(options: LaunchOptions): Promise<LaunchPlan> {
  const { home, cell, instanceId } = options;
  const data = dataDir(home, cell, instanceId);
  const deno = { denoDir: await findDenoDir(), ringCache: ringCacheDir() };
  const permissions = permissionFlags(options, deno);
  const env: Record<string, string> = {
    CELL_HOME: home,
    CELL_INSTANCE_ID: instanceId,
    CELL_NODE_ID: options.nodeId,
    CELL_DATA_DIR: data,
    TMPDIR: data,
    NO_COLOR: "1",
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? data,
  };
  for (const name of ["DENO_DIR", "XDG_CACHE_HOME", "CELL_SHM", "CELL_NUCLEUS"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const denoArgs = ["run", ...permissions, options.module, ...options.args];
  const bwrap = options.sandbox ? findBwrap() : undefined;
  if (!bwrap) {
    return {
      command: Deno.execPath(),
      args: denoArgs,
      env,
      cwd: data,
      sandbox: "none",
      permissions,
    };
  }
  const args = [
    "--unshare-all",
    ...(options.manifest.permissions?.net ? ["--share-net"] : []),
    "--new-session",
    // The instance is the namespace's init: signals reach it directly, and when it dies the
    // kernel ends everything else in the sandbox.
    "--as-pid-1",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    ...["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"].flatMap((
      p,
    ) => ["--ro-bind-try", p, p]),
    ...ETC.flatMap((p) => ["--ro-bind-try", `/etc/${p}`, `/etc/${p}`]),
    "--ro-bind",
    Deno.execPath(),
    Deno.execPath(),
    ...(deno.denoDir ? ["--ro-bind-try", deno.denoDir, deno.denoDir] : []),
    ...(deno.ringCache ? ["--ro-bind-try", deno.ringCache, deno.ringCache] : []),
    ...(isUrlModule(options.module)
      ? []
      : ["--ro-bind", projectRoot(options.module), projectRoot(options.module)]),
    "--bind",
    join(home, "run"),
    join(home, "run"),
    "--bind",
    data,
    data,
    "--bind-try",
    "/dev/shm",
    "/dev/shm",
    "--chdir",
    data,
    "--",
    Deno.execPath(),
    ...denoArgs,
  ];
  return { command: bwrap, args, env, cwd: data, sandbox: "bwrap", permissions };
}

/** The pieces of `/etc` a process needs for DNS, TLS certificates and user names: no secrets. */
const ETC = [
  "resolv.conf",
  "hosts",
  "nsswitch.conf",
  "host.conf",
  "gai.conf",
  "ssl",
  "ca-certificates",
  "ca-certificates.conf",
  "pki",
  "crypto-policies",
  "passwd",
  "group",
  "localtime",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
];
