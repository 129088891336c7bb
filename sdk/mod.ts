/**
 * The Cell SDK: declare typed messages (proteins) and services, serve them, and call them
 * through typed clients.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, method, protein, serve, service, t } from "@cell/sdk";
 *
 * const Request = protein("Request", { name: t.string() });
 * const Response = protein("Response", { greeting: t.string() });
 * const MyService = service({ greet: method(Request, Response) });
 *
 * const server = await serve("mod-greeter", MyService.implement({
 *   greet: ({ name }) => ({ greeting: `Hello, ${name}!` }),
 * }), { socket: false, handleSignals: false });
 *
 * const client = await connect<typeof MyService>("mod-greeter");
 * assert.ok((await client.greet({ name: "World" })).greeting === "Hello, World!");
 * await client.$close();
 * await server.shutdown();
 * ```
 *
 * @module
 */
export {
  CellError,
  type CellErrorOptions,
  type Code,
  CODE_NUMBERS,
  codeFromNumber,
} from "./errors.ts";
export {
  type FieldError,
  type Fields,
  type FieldType,
  type Infer,
  isProtein,
  type Protein,
  protein,
  type ProteinOptions,
  type ScalarType,
  t,
} from "./protein.ts";
export {
  type Handlers,
  type Implementation,
  type Method,
  method,
  type MethodOptions,
  type Methods,
  type RequestOf,
  type ResponseOf,
  type Service,
  service,
  type ServiceOptions,
} from "./service.ts";
export type { CallContext, PeerInfo } from "./context.ts";
export {
  type CellSchema,
  type FieldSchema,
  type MethodSchema,
  type ProteinSchema,
  schemaOf,
  type TypeRef,
} from "./schema.ts";
export { type Endpoint, SCHEMA_METHOD, serve, type ServeOptions, type Server } from "./server.ts";
export {
  type Balance,
  type CallOptions,
  type Client,
  type ClientHelpers,
  type ClientInfo,
  connect,
  connectDynamic,
  type ConnectOptions,
  DEFAULT_TIMEOUT_MS,
  type DynamicClient,
} from "./client.ts";
export type {
  Connection,
  ConnectionHandlers,
  DialOptions,
  Listener,
  ListenOptions,
  Transport,
} from "./transport.ts";
export { inprocTransport } from "./inproc.ts";
export { udsTransport } from "./uds.ts";
export { loadShm, shmAddress, shmTransport } from "./shm.ts";
export {
  cellHome,
  checkInstanceId,
  ensurePrivateDir,
  instanceSocketPath,
  runDir,
  socketPath,
} from "./home.ts";
export {
  NucleusClient,
  type NucleusConnectOptions,
  type RegisteredInstance,
  type RegisterOptions,
} from "./nucleus.ts";
export { checkCellName } from "./_names.ts";
export {
  type CodegenMacro,
  codegenMacro,
  type CodegenMacroOptions,
  expand,
  type Expanded,
  ExpandedFile,
  expandFiles,
  type ExpandFilesOptions,
  type ExpandOptions,
  ExpandRequest,
  ExpandResponse,
  type Macro,
  type MacroFile,
  MacroInfo,
  MacroList,
  MacroService,
  macroService,
  MacrosRequest,
  type ProteinMacro,
  proteinMacro,
  type ProteinMacroOptions,
  withMacros,
} from "./macro.ts";
