// @peculiar/x509 resolves its algorithm providers through tsyringe, which refuses to load unless
// the Reflect metadata API exists. It only ever stores and reads metadata; this minimal
// WeakMap-backed implementation covers that, so we need no `reflect-metadata` dependency.
// Installs nothing when a real polyfill is already present. Import before @peculiar/x509.
type MetadataStore = WeakMap<object, Map<string | symbol | undefined, Map<unknown, unknown>>>;

interface ReflectMetadataApi {
  getMetadata?: unknown;
}

const reflect = Reflect as typeof Reflect & ReflectMetadataApi & Record<string, unknown>;

if (typeof reflect.getMetadata !== 'function') {
  const store: MetadataStore = new WeakMap();
  const table = (target: object, property: string | symbol | undefined, create: boolean): Map<unknown, unknown> | undefined => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      byProperty = new Map();
      store.set(target, byProperty);
    }
    let entries = byProperty.get(property);
    if (!entries && create) {
      entries = new Map();
      byProperty.set(property, entries);
    }
    return entries;
  };
  const getOwnMetadata = (key: unknown, target: object, property?: string | symbol): unknown =>
    table(target, property, false)?.get(key);
  const getMetadata = (key: unknown, target: object, property?: string | symbol): unknown => {
    // Walk the prototype chain like the reference polyfill; bounded by the chain's length.
    for (let current: object | null = target; current !== null; current = Object.getPrototypeOf(current) as object | null) {
      const value = getOwnMetadata(key, current, property);
      if (value !== undefined) return value;
    }
    return undefined;
  };
  const defineMetadata = (key: unknown, value: unknown, target: object, property?: string | symbol): void => {
    table(target, property, true)?.set(key, value);
  };
  const metadata = (key: unknown, value: unknown) => (target: object, property?: string | symbol): void =>
    defineMetadata(key, value, target, property);
  Object.assign(reflect, { getMetadata, getOwnMetadata, defineMetadata, metadata });
}

export {};
