/**
 * The seed's greeting service: the definition that the server implements and the client imports.
 *
 * @module
 */
import { method, protein, service, t } from "@cell/sdk";

/** Who to greet. */
export const Request = protein("Request", {
  /** The name to put in the greeting. */
  name: t.string(),
});

/** The greeting. */
export const Response = protein("Response", {
  /** For example `Hello, World!`. */
  greeting: t.string(),
});

/** Greets people by name. */
export const MyService = service({
  /** Returns `Hello, <name>!`. */
  greet: method(Request, Response, { idempotent: true }),
});

/** The service's type, for clients that import only types. */
export type MyService = typeof MyService;
