/**
 * Repeated member names in a JSON text (RFC 8259 §4: names SHOULD be unique; with a repeat "the behavior of software
 * that receives such an object is unpredictable"). JSON.parse keeps the last value, another parser the first: a
 * client whose own parser reads `{"serious": false, "serious": true}` as not serious would be told it sent a serious
 * event. The service refuses such a body instead of picking one.
 *
 * Takes a text JSON.parse has already accepted; names are compared as parsed (escapes decoded) and in NFC, the form
 * every incoming string is normalized to. Answers the path of the first repeated member (`site.bodySite`,
 * `donorIds.0.x`), or null when every object's names are distinct. One pass over the text, no allocation per value.
 */
export function firstRepeatedMember(text: string): string | null {
  if (text.indexOf('"') < 0) return null;
  interface Frame { object: boolean; path: string; names: Set<string> | null; name: string; index: number; nameNext: boolean }
  const stack: Frame[] = [];
  const childPath = (top: Frame | undefined) => (top === undefined ? '' : join(top.path, top.object ? top.name : String(top.index)));
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) { escaped = true; i++; continue; }
        if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.object && top.nameNext) {
        const raw = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
        const name = raw.normalize('NFC');
        top.names ??= new Set();
        if (top.names.has(name)) return join(top.path, name);
        top.names.add(name);
        top.name = name;
        top.nameNext = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ object: c === 0x7b, path: childPath(stack[stack.length - 1]), names: null, name: '', index: 0, nameNext: c === 0x7b });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.nameNext = true;
      else if (top) top.index++;
    }
  }
  return null;
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);
