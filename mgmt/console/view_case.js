// One case: its facts, the form that changes status and assignee, alerts, evidence (raw
// log lines, shown as text), notes and the timeline.
import { h, append, select, errorNotice, unavailableNotice, formatTime } from './dom.js';
import {
  getCase, getTimeline, addNote, updateCase, STATUSES, RESOLUTIONS,
} from './data_cases.js';

function facts(c) {
  const group = c.group && typeof c.group === 'object'
    ? Object.entries(c.group).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')
    : String(c.group ?? '');
  const rows = [
    ['Severity', h('span', { class: `badge sev-${c.severity}` }, c.severity)],
    ['Status', h('span', { id: 'case-status', class: `badge st-${c.status}` }, String(c.status).replace('_', ' '))],
    ['Resolution', c.resolution || '-'],
    ['Assignee', h('span', { id: 'case-assignee' }, c.assignee || '-')],
    ['Tenant', c.tenant],
    ['Rule', c.rule_id || '-'],
    ['Group', group || '-'],
    ['First event', formatTime(c.first_event)],
    ['Detected', formatTime(c.detected)],
    ['Updated', formatTime(c.updated)],
  ];
  return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function workForm(c, app) {
  const status = select({ name: 'status', id: 'work-status' },
    STATUSES.map((s) => [s, s.replace('_', ' ')]), c.status);
  const resolution = select({ name: 'resolution', id: 'work-resolution' },
    [['', '(none)'], ...RESOLUTIONS.map((r) => [r, r.replace('_', ' ')])], c.resolution || '');
  const resolutionField = h('label', { class: 'field' }, h('span', {}, 'Resolution'), resolution);
  const assignee = h('input', { name: 'assignee', id: 'work-assignee', value: c.assignee || '',
    autocomplete: 'off' });
  const message = h('div', { class: 'form-message' });
  const showResolution = () => {
    resolutionField.hidden = !['resolved', 'closed'].includes(status.value);
  };
  status.addEventListener('change', showResolution);
  showResolution();

  const form = h('form', { id: 'work-form', class: 'filters', onsubmit: save },
    h('label', { class: 'field' }, h('span', {}, 'Status'), status),
    resolutionField,
    h('label', { class: 'field' }, h('span', {}, 'Assignee'), assignee),
    h('button', { type: 'submit', id: 'work-save' }, 'Save'),
    message);

  async function save(event) {
    event.preventDefault();
    const changes = {};
    if (status.value !== c.status) changes.status = status.value;
    if (!resolutionField.hidden && resolution.value && resolution.value !== c.resolution) {
      changes.resolution = resolution.value;
    }
    if (assignee.value.trim() !== (c.assignee || '')) changes.assignee = assignee.value.trim();
    message.replaceChildren();
    if (Object.keys(changes).length === 0) {
      append(message, h('p', { class: 'notice' }, 'Nothing changed.'));
      return;
    }
    await app.act(async () => {
      try {
        await updateCase(c.id, changes);
        app.flash(`Case ${c.id} updated.`);
        await app.rerender();
      } catch (error) {
        append(message, error.unavailable ? unavailableNotice('Changing cases', error) : errorNotice(error));
      }
    });
  }
  return form;
}

function alertsTable(alerts) {
  if (alerts.length === 0) return h('p', { class: 'empty' }, 'No alerts.');
  return h('table', { id: 'alerts', class: 'grid' },
    h('thead', {}, h('tr', {}, ['ID', 'Rule', 'Level', 'Events', 'First event', 'Detected', 'Indicators']
      .map((label) => h('th', {}, label)))),
    h('tbody', {}, alerts.map((a) => h('tr', { 'data-alert-id': a.id },
      h('td', {}, String(a.id)),
      h('td', {}, a.rule_title || a.rule_id),
      h('td', {}, a.level),
      h('td', { class: 'num' }, String(a.event_count ?? '')),
      h('td', {}, formatTime(a.first_event)),
      h('td', {}, formatTime(a.detected)),
      h('td', {}, Array.isArray(a.indicator_hits) ? String(a.indicator_hits.length) : '-')))));
}

function evidenceList(evidence) {
  if (evidence.length === 0) return h('p', { class: 'empty', id: 'evidence' }, 'No evidence.');
  return h('ol', { id: 'evidence', class: 'evidence' }, evidence.map((item) =>
    h('li', { 'data-alert': item.alert },
      h('div', { class: 'caption' }, `alert ${item.alert}, event ${Number(item.position) + 1}`),
      h('pre', { class: 'raw' }, item.raw))));
}

function notesSection(c, app) {
  const list = c.notes === null
    ? h('p', { class: 'notice' }, 'This vigild does not return notes with the case.')
    : (c.notes.length === 0
      ? h('p', { class: 'empty' }, 'No notes yet.')
      : h('ol', { id: 'notes', class: 'notes' }, c.notes.map((n) => h('li', {},
        h('div', { class: 'caption' }, `${n.author || 'unknown'}, ${formatTime(n.at)}`),
        h('p', { class: 'note-text' }, n.text)))));
  const text = h('textarea', { name: 'text', id: 'note-text', rows: 3, required: true,
    maxlength: 10000, placeholder: 'Add a note; @name mentions an analyst' });
  const message = h('div', { class: 'form-message' });
  const form = h('form', { id: 'note-form', onsubmit: submit },
    text, h('button', { type: 'submit', id: 'note-add' }, 'Add note'), message);

  async function submit(event) {
    event.preventDefault();
    const body = text.value.trim();
    message.replaceChildren();
    if (!body) return;
    await app.act(async () => {
      try {
        await addNote(c.id, body);
        app.flash('Note added.');
        await app.rerender();
      } catch (error) {
        append(message, error.unavailable ? unavailableNotice('Notes', error) : errorNotice(error));
      }
    });
  }
  return h('section', { id: 'notes-section' }, h('h2', {}, 'Notes'), list, form);
}

function timelineList(entries) {
  if (entries.length === 0) return h('p', { class: 'empty' }, 'No changes recorded.');
  return h('ol', { id: 'timeline', class: 'timeline' }, entries.map((e) => {
    const change = e.field ? `${e.field}: ${e.from || '-'} -> ${e.to || '-'}` : e.text || e.to;
    return h('li', {},
      h('span', { class: 'when' }, formatTime(e.at)), ' ',
      h('span', { class: 'who' }, e.actor || 'vigild'), ' ',
      h('span', { class: 'what' }, e.action), change ? ` ${change}` : '');
  }));
}

export async function render(root, route, app) {
  append(root, h('p', {}, h('a', { href: app.lastQueue(), id: 'back-to-queue' }, 'Back to cases')));
  let c;
  try {
    c = await getCase(route.id);
  } catch (error) {
    append(root, error.status === 404
      ? h('p', { class: 'notice error', role: 'alert' }, `Case ${route.id} was not found: ${error.message}`)
      : errorNotice(error));
    return;
  }
  const timeline = h('section', { id: 'timeline-section' }, h('h2', {}, 'Timeline'));
  append(root,
    h('h1', { id: 'case-title' }, c.title),
    facts(c),
    h('section', {}, h('h2', {}, 'Work on this case'), workForm(c, app)),
    h('section', {}, h('h2', {}, `Alerts (${c.alerts.length})`), alertsTable(c.alerts)),
    h('section', {}, h('h2', {}, `Evidence (${c.evidence.length})`), evidenceList(c.evidence)),
    notesSection(c, app),
    timeline);

  try {
    append(timeline, timelineList(await getTimeline(c.id)));
  } catch (error) {
    append(timeline, error.unavailable ? unavailableNotice('The timeline', error) : errorNotice(error));
  }
}
