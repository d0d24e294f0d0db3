// Who a token belongs to. GET /api/v1/whoami is expected to return
// {"subject": "...", "role": "...", "tenants": [...]}; adapt identityFrom() if it changes.
import { request } from './api.js';

function identityFrom(body) {
  return {
    subject: body.subject || body.name || '',
    role: body.role || '',
    tenants: Array.isArray(body.tenants) ? body.tenants : [],
  };
}

// Checks `token` against vigild. Resolves to the identity, or to null when this vigild has
// no /api/v1/whoami (the token is then checked with a one-case list instead).
// Rejects with ApiError when vigild rejects the token (401) or fails.
export async function verifyToken(token) {
  try {
    return identityFrom(await request('GET', '/api/v1/whoami', { token }));
  } catch (error) {
    if (!error.unavailable) throw error;
  }
  await request('GET', '/api/v1/cases', { token, query: { limit: 1 } });
  return null;
}
