// Builds DOM nodes without ever parsing HTML. Every string becomes a Text node or an
// attribute value, so markup inside case data (log lines are attacker-controlled) is
// shown as text and never runs. The server's Content-Security-Policy enforces Trusted
// Types with no policy, so assigning an HTML string to an element would throw anyway.

// Creates <tag> with `props` and `children`.
//   props: attribute name -> value; "class" sets className, "on<event>" takes a function
//          and adds a listener, true sets an empty attribute, false/null/undefined skip it.
//          "href" must be an in-page link ("#...") so data can never become a URL.
//   children: strings and numbers (become text), Nodes, arrays of those, null to skip.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new TypeError(`${key} needs a function`);
      element.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'value') {
      element.value = String(value);
    } else if (key === 'href' && !String(value).startsWith('#')) {
      throw new TypeError(`href ${value} is not an in-page link`);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

// Appends `children` (see h()) to `parent`.
export function append(parent, ...children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

// Replaces every child of `parent` with `children`.
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

// A <select> with `options` ([value, label] pairs) and `selected` chosen.
export function select(props, options, selected) {
  return h('select', props, options.map(([value, label]) =>
    h('option', { value, selected: value === (selected ?? '') }, label)));
}

// A paragraph stating that an endpoint is missing on this vigild; `what` names the feature.
export function unavailableNotice(what, error) {
  return h('p', { class: 'notice unavailable', 'data-unavailable': what },
    `${what} is not available on this vigild: ${error.method} ${error.path} answered `,
    `${error.status}. Upgrade vigild to use it.`);
}

// A paragraph with an API or network error.
export function errorNotice(error) {
  return h('p', { class: 'notice error', role: 'alert' }, String(error.message || error));
}

// Formats an RFC 3339 time as "2026-01-01 10:00:00 UTC", or "-" when empty.
export function formatTime(text) {
  if (!text) return '-';
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return String(text);
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// Formats a duration in seconds as "45 s", "12 min", "3 h 05 min" or "2 d 4 h"; "-" for
// null or undefined.
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
