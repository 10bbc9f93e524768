// DOM helpers for the dashboard. Everything the API returns reaches the page through textContent or
// setAttribute on a fixed list of harmless attributes, never through a setter that parses HTML: a payload,
// error or log that holds markup stays text (the browser test checks this on every page).

const SVG_NS = "http://www.w3.org/2000/svg";

/** Attributes a caller may set; an event handler attribute (on...) or a URL-valued one from data never is. */
const SAFE_ATTRIBUTES = new Set([
  "class",
  "id",
  "type",
  "name",
  "value",
  "placeholder",
  "title",
  "for",
  "role",
  "colspan",
  "min",
  "max",
  "step",
  "autocomplete",
  "aria-label",
  "aria-live",
  "aria-current",
  "data-status",
  "data-testid",
  "hidden",
  "x",
  "y",
  "x1",
  "x2",
  "y1",
  "y2",
  "width",
  "height",
  "viewBox",
  "d",
  "points",
  "text-anchor",
  "preserveAspectRatio",
  "disabled",
  "selected",
  "checked",
  "required",
  "href",
]);

/**
 * Builds an element. `props`: attributes (only the safe ones above; `href` only to "#..." routes),
 * `on: { event: fn }` for listeners, `text` for its text. Children: nodes, or strings and numbers as text.
 */
export function h(tag, props = {}, ...children) {
  const el = props.svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "svg" || value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === "text") {
      el.textContent = String(value);
    } else {
      if (!SAFE_ATTRIBUTES.has(key)) throw new Error(`dashboard: attribute ${key} is not allowed`);
      if (key === "href" && !String(value).startsWith("#")) throw new Error("dashboard: links are routes");
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (nodes; strings and numbers become text nodes; null, undefined and false are skipped). */
export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** An SVG element (see h). */
export function s(tag, props = {}, ...children) {
  return h(tag, { ...props, svg: true }, ...children);
}

/** Epoch milliseconds as a local date and time, or "—". */
export function when(ms) {
  if (ms === null || ms === undefined) return "—";
  const date = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** A duration in milliseconds, short: "850 ms", "12 s", "4 min 3 s", "2 h 5 min", or "—". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A value as indented JSON text, for a <pre>. */
export function pretty(value) {
  if (value === undefined) return "—";
  return JSON.stringify(value, null, 2);
}

/** A status as a badge. */
export function badge(status) {
  return h("span", { class: "badge", "data-status": status, text: status });
}

/** A table: headers, then rows of cells (nodes or text). */
export function table(headers, rows, empty = "None.") {
  if (rows.length === 0) return h("p", { class: "empty", text: empty });
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { text: name })))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
  );
}
