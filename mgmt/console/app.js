// Entry point: hash routing, sign-in state, the header and the flash line. Views live in
// view_*.js and render into a fresh <section>; data access lives in data_*.js.
//
// <body> carries the state for tests and styles: data-view is the current view,
// data-state is "loading", "busy" (an action runs) or "ready", and data-render counts
// finished renders.
import { h, append, replace } from './dom.js';
import { storedToken, forgetToken, setUnauthorizedHandler } from './api.js';
import { verifyToken } from './data_session.js';
import * as signin from './view_signin.js';
import * as queue from './view_queue.js';
import * as caseView from './view_case.js';
import * as approvals from './view_approvals.js';
import * as metrics from './view_metrics.js';

const VIEWS = { signin, cases: queue, case: caseView, approvals, metrics };
const body = document.body;
const main = document.getElementById('view');
const flashLine = document.getElementById('flash');
let renders = 0;
let pendingFlash = '';
let lastQueueHash = '#/cases';

// "#/cases?status=new" -> {name: "cases", params}, "#/cases/12" -> {name: "case", id: "12"}.
function parseRoute(hash) {
  const text = hash.replace(/^#\/?/, '');
  const query = text.indexOf('?');
  const path = query < 0 ? text : text.slice(0, query);
  const params = new URLSearchParams(query < 0 ? '' : text.slice(query + 1));
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'cases' && parts.length === 2) return { name: 'case', id: parts[1], params };
  if (parts.length === 1 && VIEWS[parts[0]]) return { name: parts[0], params };
  return { name: 'cases', params };
}

function showIdentity(identity) {
  const label = document.getElementById('identity');
  if (!identity) {
    replace(label, 'Signed in');
  } else {
    const tenants = identity.tenants.length ? ` - ${identity.tenants.join(', ')}` : '';
    replace(label, h('strong', {}, identity.subject), ` (${identity.role})${tenants}`);
  }
}

function showSignedIn(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('signout').hidden = !signedIn;
  if (!signedIn) replace(document.getElementById('identity'));
}

const app = {
  identity: null,

  navigate(hash) {
    if (window.location.hash === hash) this.rerender();
    else window.location.hash = hash;
  },

  // Renders the current route again, keeping the flash message set just before.
  rerender() {
    return render();
  },

  flash(message) {
    pendingFlash = message;
  },

  lastQueue() {
    return lastQueueHash;
  },

  setBusy(busy) {
    body.dataset.state = busy ? 'busy' : 'ready';
  },

  // Runs `action` (an async function) with the page marked busy.
  async act(action) {
    this.setBusy(true);
    try {
      await action();
    } finally {
      this.setBusy(false);
    }
  },

  signedIn(identity) {
    this.identity = identity;
    showIdentity(identity);
    showSignedIn(true);
    const route = parseRoute(window.location.hash);
    this.navigate(route.name === 'signin' ? '#/cases' : window.location.hash || '#/cases');
  },
};

async function render() {
  let route = parseRoute(window.location.hash);
  if (!storedToken() && route.name !== 'signin') route = { name: 'signin', params: new URLSearchParams() };
  if (route.name === 'cases') lastQueueHash = window.location.hash || '#/cases';

  body.dataset.state = 'loading';
  body.dataset.view = route.name;
  for (const link of document.querySelectorAll('[data-nav]')) {
    link.classList.toggle('active', link.dataset.nav === route.name ||
      (route.name === 'case' && link.dataset.nav === 'cases'));
  }
  flashLine.hidden = !pendingFlash;
  replace(flashLine, pendingFlash);
  pendingFlash = '';

  const section = h('section', { class: `view view-${route.name}` });
  main.replaceChildren(section);
  try {
    await VIEWS[route.name].render(section, route, app);
  } catch (error) {
    append(section, h('p', { class: 'notice error', role: 'alert' },
      `The console failed to show this page: ${error.message}`));
  }
  // A newer render may have replaced this one while it waited for vigild.
  if (main.firstChild === section) {
    renders += 1;
    body.dataset.render = String(renders);
    body.dataset.state = 'ready';
  }
}

function signOut(expired) {
  forgetToken();
  app.identity = null;
  showSignedIn(false);
  window.location.hash = expired ? '#/signin?expired=1' : '#/signin';
}

async function start() {
  setUnauthorizedHandler(() => signOut(true));
  document.getElementById('signout').addEventListener('click', () => signOut(false));
  window.addEventListener('hashchange', () => render());
  if (storedToken()) {
    try {
      app.identity = await verifyToken(storedToken());
      showIdentity(app.identity);
    } catch (error) {
      if (error.status === 401) forgetToken();
    }
    showSignedIn(Boolean(storedToken()));
  }
  await render();
}

start();
