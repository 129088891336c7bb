/**
 * Service definitions: the methods a cell serves, each taking one protein and returning one.
 * The TypeScript form of the seed's `#[handler] impl MyService`.
 *
 * @module
 */
import type { Infer, Protein } from "./protein.ts";
import { isProtein } from "./protein.ts";
import type { CallContext } from "./context.ts";
import { callerFile } from "./_source.ts";
import { RESERVED_METHOD_NAMES } from "./_names.ts";

/** Options of {@linkcode method}. */
export interface MethodOptions {
  /**
   * The method can run more than once with the same effect as once, so clients retry it on
   * another attempt or instance after `UNAVAILABLE`.
   * @default {false}
   */
  idempotent?: boolean;
  /** Documentation; by default taken from the TSDoc comment on the declaration. */
  doc?: string;
}

/** A method: its request and response proteins. Made by {@linkcode method}. */
export interface Method<Req extends Protein = Protein, Res extends Protein = Protein> {
  /** Marks the object as a method. */
  readonly kind: "method";
  /** The request protein. */
  readonly request: Req;
  /** The response protein. */
  readonly response: Res;
  /** Whether clients may retry it. */
  readonly idempotent: boolean;
  /** Explicit documentation, if given. */
  readonly doc?: string;
}

/**
 * Declares a method that takes `request` and returns `response`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { method, protein, t } from "@cell/sdk";
 * const Req = protein("Req", { name: t.string() });
 * const Res = protein("Res", { greeting: t.string() });
 * const greet = method(Req, Res, { idempotent: true });
 * assert.ok(greet.idempotent);
 * ```
 */
export function method<Req extends Protein, Res extends Protein>(
  request: Req,
  response: Res,
  options: MethodOptions = {},
): Method<Req, Res> {
  if (!isProtein(request) || !isProtein(response)) {
    throw new TypeError(
      "method() takes a request and a response protein: declare them with protein(name, fields)",
    );
  }
  return {
    kind: "method",
    request,
    response,
    idempotent: options.idempotent ?? false,
    ...(options.doc === undefined ? {} : { doc: options.doc }),
  };
}

/** The methods of a service, by name. */
export type Methods = Record<string, Method>;

/** The request type of a method. */
export type RequestOf<M> = M extends Method<infer Req, Protein> ? Infer<Req> : never;
/** The response type of a method. */
export type ResponseOf<M> = M extends Method<Protein, infer Res> ? Infer<Res> : never;

/** The handler functions that implement a service's methods. */
export type Handlers<M extends Methods> = {
  [K in keyof M]: (
    request: RequestOf<M[K]>,
    context: CallContext,
  ) => ResponseOf<M[K]> | Promise<ResponseOf<M[K]>>;
};

/** Options of {@linkcode service}. */
export interface ServiceOptions {
  /** Documentation; by default taken from the TSDoc comment on the declaration. */
  doc?: string;
}

/** A service definition together with the handlers that implement it. */
export interface Implementation<M extends Methods = Methods> {
  /** The definition. */
  readonly definition: Service<M>;
  /** The handlers. */
  readonly handlers: Handlers<M>;
}

/** A service definition. Made by {@linkcode service}. */
export interface Service<M extends Methods = Methods> {
  /** Marks the object as a service. */
  readonly kind: "service";
  /** The methods, by name. */
  readonly methods: M;
  /** Explicit documentation, if given. */
  readonly doc?: string;
  /** Module that declared the service, where its TSDoc is read from. */
  readonly source?: string;
  /** Pairs the definition with handlers; every method needs one. */
  implement(handlers: Handlers<M>): Implementation<M>;
}

const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Declares a service: the methods a cell serves. Share the definition (or only its type, as
 * `typeof MyService`) with clients.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { method, protein, service, t } from "@cell/sdk";
 *
 * const Request = protein("Request", { name: t.string() });
 * const Response = protein("Response", { greeting: t.string() });
 *
 * /** Greets people. *\/
 * const MyService = service({
 *   /** Says hello to `name`. *\/
 *   greet: method(Request, Response),
 * });
 *
 * const impl = MyService.implement({
 *   greet: ({ name }) => ({ greeting: `Hello, ${name}!` }),
 * });
 * assert.ok(typeof impl.handlers.greet === "function");
 * ```
 */
export function service<const M extends Methods>(
  methods: M,
  options: ServiceOptions = {},
): Service<M> {
  for (const [name, m] of Object.entries(methods)) {
    if (!METHOD_NAME.test(name) || RESERVED_METHOD_NAMES.has(name)) {
      throw new TypeError(
        `Method name ${JSON.stringify(name)} is invalid: use letters, digits and '_', ` +
          "not starting with a digit, and none of then/catch/finally/toJSON/constructor/inspect",
      );
    }
    if (m?.kind !== "method") {
      throw new TypeError(
        `Method '${name}' is not a method: declare it as method(RequestProtein, ResponseProtein)`,
      );
    }
  }
  const source = callerFile();
  const definition: Service<M> = {
    kind: "service",
    methods,
    ...(options.doc === undefined ? {} : { doc: options.doc }),
    ...(source === undefined ? {} : { source }),
    implement(handlers: Handlers<M>): Implementation<M> {
      for (const name of Object.keys(methods)) {
        if (typeof (handlers as Record<string, unknown>)[name] !== "function") {
          throw new TypeError(
            `No handler for method '${name}': implement() needs a function for every method`,
          );
        }
      }
      return { definition, handlers };
    },
  };
  return definition;
}
