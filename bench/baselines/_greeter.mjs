/**
 * The "greet" call every baseline serves: `{ name }` -> `{ greeting }`, with
 * the greeting computed by the server from the name.
 *
 * @module
 */

/** The request every benchmark sends. */
export const GREET_REQUEST = Object.freeze({ name: "World" });

/** The response the server must produce for {@link GREET_REQUEST}. */
export const EXPECTED_GREETING = "Hello, World!";

/**
 * Computes the greeting for a name.
 *
 * @param {string} name
 * @returns {string}
 */
export function greeting(name) {
  return `Hello, ${name}!`;
}

/**
 * Moleculer service schema for `greeter.greet`, written the idiomatic way:
 * the action declares its params so the broker's built-in validator
 * (fastest-validator) checks them, as a typed RPC would.
 */
export const greeterService = {
  name: "greeter",
  actions: {
    greet: {
      params: { name: "string" },
      /**
       * @param {{ params: { name: string } }} ctx Moleculer context.
       * @returns {{ greeting: string }}
       */
      handler(ctx) {
        return { greeting: greeting(ctx.params.name) };
      },
    },
  },
};

/**
 * Throws unless `res` is the expected greet response; run once before
 * measuring so a broken setup cannot produce a fast but meaningless number.
 *
 * @param {unknown} res
 */
export function assertGreeting(res) {
  const got = /** @type {{ greeting?: unknown } | null} */ (res)?.greeting;
  if (got !== EXPECTED_GREETING) {
    throw new Error(`unexpected greet response: ${JSON.stringify(res)}`);
  }
}
