// Sign-in: the analyst pastes an API token; it is checked against vigild before it is kept.
import { h, append, errorNotice } from './dom.js';
import { storeToken, forgetToken } from './api.js';
import { verifyToken } from './data_session.js';

export async function render(root, route, app) {
  const input = h('input', {
    id: 'token-input', name: 'token', type: 'password', autocomplete: 'off',
    spellcheck: 'false', required: true, placeholder: 'vgl_...', size: 48,
  });
  const message = h('div', { id: 'signin-message' });
  const form = h('form', { id: 'signin-form', class: 'card narrow', onsubmit: submit },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API token. The console keeps it in this tab only and sends it ',
      'to vigild as a bearer token.'),
    h('label', { for: 'token-input' }, 'API token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    message);
  if (route.params.get('expired')) {
    append(message, h('p', { class: 'notice error' },
      'vigild rejected the token. Sign in again with a valid one.'));
  }
  append(root, form);
  input.focus();

  async function submit(event) {
    event.preventDefault();
    const token = input.value.trim();
    message.replaceChildren();
    if (!token) return;
    app.setBusy(true);
    try {
      const identity = await verifyToken(token);
      storeToken(token);
      app.signedIn(identity);
    } catch (error) {
      forgetToken();
      append(message, error.status === 401
        ? h('p', { class: 'notice error', role: 'alert' }, `vigild rejected this token: ${error.message}`)
        : errorNotice(error));
    } finally {
      app.setBusy(false);
    }
  }
}
