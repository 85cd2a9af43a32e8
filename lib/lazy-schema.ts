/**
 * A zod schema built on first use instead of at import. The CLI is a new process for each command,
 * and building schemas that a command never parses (resource limits, seccomp profiles when the
 * container has none) was a good part of its start-up. The value stands for the schema: its
 * methods, properties and prototype are the built schema's. Nest it with `z.lazy(() => schema)`,
 * so that the outer schema does not build it either.
 */
export function lazySchema<T extends object>(build: () => T): T {
  let schema: T | undefined;
  const built = (): T => (schema ??= build());
  return new Proxy({} as T, {
    get: (_t, key) => Reflect.get(built(), key),
    has: (_t, key) => Reflect.has(built(), key),
    set: (_t, key, value) => Reflect.set(built(), key, value),
    ownKeys: () => Reflect.ownKeys(built()),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(built(), key);
      // A proxy may not report a non-configurable property its own target lacks.
      return d && { ...d, configurable: true };
    },
    defineProperty: (_t, key, d) => Reflect.defineProperty(built(), key, d),
    getPrototypeOf: () => Reflect.getPrototypeOf(built()),
  });
}
