// Case data for the queue and case views. Each function maps one endpoint's JSON to the
// fields the views use, so a change in a response shape is fixed here only.
import { request } from './api.js';

export const STATUSES = ['new', 'in_progress', 'resolved', 'closed'];
export const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'];
// Why a case was resolved or closed; PATCH needs one to move a case to resolved or closed.
export const RESOLUTIONS = ['true_positive', 'false_positive', 'benign', 'duplicate'];

const caseUrl = (id) => `/api/v1/cases/${encodeURIComponent(id)}`;

// GET /api/v1/cases. `filters` holds tenant, status, severity, assignee, limit, offset and
// sort; empty ones are left out. Resolves to {items, total, limit, offset}.
export async function listCases(filters) {
  const body = await request('GET', '/api/v1/cases', { query: filters });
  return {
    items: Array.isArray(body.items) ? body.items : [],
    total: Number(body.total) || 0,
    limit: Number(body.limit) || 0,
    offset: Number(body.offset) || 0,
  };
}

// One note as {author, text, at}.
function noteFrom(note) {
  return {
    author: note.author || note.actor || '',
    text: note.body ?? note.text ?? '',
    at: note.created || note.at || note.time || '',
  };
}

// GET /api/v1/cases/{id}: the case with alerts and evidence. `notes` is null when this
// vigild does not return notes with the case.
export async function getCase(id) {
  const body = await request('GET', caseUrl(id));
  return {
    ...body,
    alerts: Array.isArray(body.alerts) ? body.alerts : [],
    evidence: Array.isArray(body.evidence) ? body.evidence : [],
    notes: Array.isArray(body.notes) ? body.notes.map(noteFrom) : null,
  };
}

// One timeline entry as {at, actor, action, field, from, to, text}.
function timelineEntryFrom(entry) {
  return {
    at: entry.at || entry.time || entry.created || '',
    actor: entry.actor || entry.author || '',
    action: entry.action || entry.type || '',
    field: entry.field || '',
    from: entry.old_value ?? entry.old ?? '',
    to: entry.new_value ?? entry.new ?? '',
    text: entry.text || entry.message || '',
  };
}

// GET /api/v1/cases/{id}/timeline, oldest first. Accepts a bare array or {"items": [...]}.
export async function getTimeline(id) {
  const body = await request('GET', `${caseUrl(id)}/timeline`);
  const entries = Array.isArray(body) ? body : (body.items || body.timeline || []);
  return entries.map(timelineEntryFrom);
}

// POST /api/v1/cases/{id}/notes with {"body"}, the note's text.
export async function addNote(id, text) {
  return request('POST', `${caseUrl(id)}/notes`, { body: { body: text } });
}

// PATCH /api/v1/cases/{id} with the fields of `changes` that are set: status, resolution,
// assignee.
export async function updateCase(id, changes) {
  const body = {};
  for (const [name, value] of Object.entries(changes)) {
    if (value !== undefined) body[name] = value;
  }
  return request('PATCH', caseUrl(id), { body });
}
