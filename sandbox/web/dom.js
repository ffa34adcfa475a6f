// Tiny DOM helpers. Text always goes in through textContent; the only HTML string ever assigned is the
// output of markdown.js, which escapes its input before adding its own tags.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "html") el.innerHTML = value; // callers pass renderMarkdown()/renderInline() output only
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const NAMED_COLORS = { good: "#3db887", warning: "#ffbc1f", danger: "#d24b4e" };

/** An attachment or button colour: good/warning/danger or #rgb/#rrggbb; anything else is dropped. */
export function safeColor(value) {
  if (typeof value !== "string") return "";
  if (NAMED_COLORS[value]) return NAMED_COLORS[value];
  return /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(value) ? value : "";
}

export function timeOf(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function dayOf(ms) {
  return new Date(ms).toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" });
}

/** A stable colour per user for the avatar circle. */
export function avatarColor(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 45%, 45%)`;
}
