const pattern = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\/([A-Za-z_][A-Za-z0-9_]*|\*)$/;

/**
 * createMethodMatcher compiles a list of `"pkg.Service/Method"` and
 * `"pkg.Service/*"` into a set lookup, and throws a `TypeError` for any entry
 * of another shape.
 */
export function createMethodMatcher(
  methods: readonly string[],
  where: string,
): (service: string, method: string) => boolean {
  if (!Array.isArray(methods)) {
    throw new TypeError(`${where} must be an array like ["pkg.Service/Method", "pkg.Service/*"]`);
  }
  const exact = new Set<string>();
  const services = new Set<string>();
  for (const entry of methods) {
    if (typeof entry !== "string" || !pattern.test(entry)) {
      throw new TypeError(
        `${where}: ${JSON.stringify(entry)} is not "pkg.Service/Method" or "pkg.Service/*" (no leading slash)`,
      );
    }
    if (entry.endsWith("/*")) {
      services.add(entry.slice(0, -2));
    } else {
      exact.add(entry);
    }
  }
  return (service, method) => services.has(service) || exact.has(`${service}/${method}`);
}
