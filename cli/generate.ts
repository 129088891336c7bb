/**
 * `cell generate <cell>`: a typed client of a cell in another language, generated from the
 * schema IR that the running cell serves, or that a TypeScript module's service declares.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import {
  type CellSchema,
  checkCellName,
  connectDynamic,
  type Handlers,
  type Methods,
  serve,
  type Service,
} from "@cell/sdk";
import {
  generate,
  type GeneratedFile,
  generateWithPlugin,
  generators,
  VERSION,
} from "@cell/codegen";
import {
  act,
  compactJson,
  type ConnectFlags,
  connectTo,
  type Context,
  EXIT_OK,
  positiveInteger,
  UsageError,
} from "./_common.ts";

interface GenerateFlags extends ConnectFlags {
  language?: string;
  plugin?: string;
  output: string;
  fromModule?: string;
  export?: string;
  package?: string;
  force?: boolean;
  json?: boolean;
}

const isService = (x: unknown): x is Service =>
  typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "service" &&
  typeof (x as { methods?: unknown }).methods === "object";

/**
 * The service exported by the module at `file`: the export `name`, or the only export that is a
 * service. Throws a {@linkcode UsageError} that lists the module's services otherwise.
 */
async function serviceFromModule(file: string, name: string | undefined): Promise<Service> {
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(resolve(file)).href);
  } catch (e) {
    throw new UsageError(`Cannot import '${file}': ${(e as Error).message}`);
  }
  const services = Object.keys(module).filter((k) => isService(module[k]));
  if (name !== undefined) {
    if (isService(module[name])) return module[name];
    throw new UsageError(
      `'${file}' has no service exported as '${name}'`,
      [`hint: its service exports are: ${services.join(", ") || "none"}`],
    );
  }
  if (services.length === 1) return module[services[0]!] as Service;
  throw new UsageError(
    services.length === 0
      ? `'${file}' exports no service (made with service({...}))`
      : `'${file}' exports several services: choose one with --export NAME`,
    services.length === 0 ? [] : [`hint: its service exports are: ${services.join(", ")}`],
  );
}

/**
 * The schema of `definition` served as `cell`, with its TSDoc: served for a moment in this
 * process (never on a socket) so that the SDK fills in the docs exactly as a running cell would.
 */
async function schemaOfModule(cell: string, definition: Service): Promise<CellSchema> {
  const stubs = Object.fromEntries(
    Object.keys(definition.methods).map((m) => [m, () => {
      throw new Error("Not served: this process only reads the schema");
    }]),
  ) as unknown as Handlers<Methods>;
  const server = await serve(cell, definition.implement(stubs), {
    socket: false,
    register: false,
    handleSignals: false,
  });
  try {
    const client = await connectDynamic(cell, { transport: "inproc" });
    try {
      return await client.$schema();
    } finally {
      await client.$close();
    }
  } finally {
    await server.shutdown();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function writeFiles(output: string, files: GeneratedFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const file of files) {
    const path = join(output, ...file.path.split("/"));
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, file.contents);
    written.push(path);
  }
  return written;
}

/** Registers `cell generate`. */
export function registerGenerate(program: Command, ctx: Context): void {
  const languages = () => [...generators.keys()].join(", ");
  program
    .command("generate")
    .summary("generate a typed client of a cell in another language")
    .description(
      "Write a typed client of the cell <cell> in --language to the directory --output, from " +
        "the schema the running cell serves, or with --from-module from the service a " +
        "TypeScript module exports (no running cell needed). The client calls the cell over " +
        "its Unix socket, found through $CELL_HOME like any Cell client.",
    )
    .argument("<cell>", "name of the cell, for example my-service")
    .option("-l, --language <language>", `target language: ${languages()}`)
    .option(
      "--plugin <executable>",
      "generate with this external plugin instead of --language: it reads " +
        '{"schema", "options"} as JSON on stdin and writes {"files": [{"path", "contents"}]}',
    )
    .requiredOption("-o, --output <dir>", "directory to write the client into")
    .option("--from-module <file>", "read the service from this TypeScript module")
    .option("--export <name>", "with --from-module: the export holding the service")
    .option("--package <name>", "package or module name (default: from the cell name)")
    .option("--force", "write into an existing --output, replacing files of the same name")
    .option(
      "-t, --timeout <ms>",
      "deadline of the schema call in milliseconds",
      positiveInteger("--timeout"),
    )
    .option(
      "-s, --socket <path>",
      "connect to this Unix socket instead of $CELL_HOME/run/<cell>.sock",
    )
    .option("--json", "print the written files as one line of JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ cell generate my-service --language python --output ./clients/python
  $ cell generate my-service --language typescript --output ./clients/ts --force
  $ cell generate my-service -l go -o ./gen --from-module ./service.ts --export MyService
  $ cell generate my-service --plugin ./cell-gen-java -o ./java`,
    )
    .action((cell: string, flags: GenerateFlags) =>
      act(ctx, { json: flags.json, cell, socket: flags.socket }, async () => {
        if ((flags.language === undefined) === (flags.plugin === undefined)) {
          throw new UsageError("Give either --language LANGUAGE or --plugin EXECUTABLE", [
            `hint: languages: ${languages()}`,
          ]);
        }
        if (flags.language !== undefined && !generators.has(flags.language)) {
          throw new UsageError(
            `Unsupported language '${flags.language}': use one of ${languages()}, or --plugin`,
          );
        }
        if (flags.export !== undefined && flags.fromModule === undefined) {
          throw new UsageError("--export needs --from-module FILE");
        }
        try {
          checkCellName(cell);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        if (await exists(flags.output) && !flags.force) {
          throw new UsageError(
            `Output '${flags.output}' exists: pass --force to write into it, or choose another ` +
              "--output",
          );
        }
        let schema: CellSchema;
        if (flags.fromModule !== undefined) {
          schema = await schemaOfModule(
            cell,
            await serviceFromModule(flags.fromModule, flags.export),
          );
        } else {
          await using client = await connectTo(ctx, cell, flags);
          schema = await client.$schema(
            flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
          );
        }
        const options = {
          version: VERSION,
          ...(flags.package === undefined ? {} : { packageName: flags.package }),
        };
        const files = flags.plugin === undefined
          ? generate(schema, flags.language!, options)
          : await generateWithPlugin(flags.plugin, [], schema, options);
        const written = await writeFiles(flags.output, files);
        const language = flags.language ?? flags.plugin;
        ctx.io.stdout(
          flags.json
            ? compactJson({ cell, language, hash: schema.hash, files: written })
            : `Generated a ${language} client of ${cell} (${schema.hash}):\n` +
              written.map((f) => `  ${f}\n`).join(""),
        );
        return EXIT_OK;
      })
    );
}
