/**
 * The loaded config is frozen once, at load, all the way down: every module is handed a slice of
 * one object shared by all, so a module that changed its slice would change it for the others,
 * silently and in an order nobody chose. The types (`DeepReadonly` in ./types.ts) refuse such a
 * write at compile time; this makes one that slips past them (a cast, plain JS) throw at run time.
 *
 * `Object.freeze` alone does not stop `Map.set`, so maps and sets get writers that throw. Typed
 * arrays (PCR values, address bytes) are left as they are: JavaScript cannot freeze their bytes.
 */
const WRITERS = { map: ['set', 'delete', 'clear'], set: ['add', 'delete', 'clear'] } as const;

function refuseWrites(target: object, names: readonly string[]): void {
  for (const name of names) {
    Object.defineProperty(target, name, {
      value: () => {
        throw new TypeError(`the loaded config is read-only (${target.constructor.name}.${name})`);
      },
    });
  }
}

function freezeFrom(value: unknown, seen: Set<object>): void {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      freezeFrom(key, seen);
      freezeFrom(entry, seen);
    }
    refuseWrites(value, WRITERS.map);
  } else if (value instanceof Set) {
    for (const entry of value) freezeFrom(entry, seen);
    refuseWrites(value, WRITERS.set);
  }
  for (const entry of Object.values(value)) freezeFrom(entry, seen);
  Object.freeze(value);
}

/** Freezes `config` and everything it holds (once: the config is not usable for writing after). */
export function freezeConfig<T extends object>(config: T): T {
  freezeFrom(config, new Set());
  return config;
}
