/**
 * JSON Merge Patch (RFC 7396 §2): members of `patch` replace those of `target`, objects merge member by
 * member, and a member set to null is removed (its field falls back to its empty or default value when the
 * result is validated). Arrays and other values replace as a whole.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
