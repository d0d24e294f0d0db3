// MTTD (first event to detection), MTTA (detection to first analyst action) and MTTR
// (detection to resolution) per tenant over a period.
import { h, append, errorNotice, unavailableNotice, formatDuration } from './dom.js';
import { caseMetrics } from './data_metrics.js';

// "2026-01-31" from a date input -> "2026-01-31T00:00:00Z"; the end date is exclusive.
const dayStart = (value) => (value ? `${value}T00:00:00Z` : undefined);

function filterForm(params, app) {
  const field = (label, control) => h('label', { class: 'field' }, h('span', {}, label), control);
  const form = h('form', { id: 'metrics-filters', class: 'filters', onsubmit: apply },
    field('Tenant', h('input', { name: 'tenant', value: params.get('tenant') || '', autocomplete: 'off' })),
    field('From (UTC)', h('input', { name: 'from', type: 'date', value: params.get('from') || '' })),
    field('To (UTC, exclusive)', h('input', { name: 'to', type: 'date', value: params.get('to') || '' })),
    h('button', { type: 'submit' }, 'Apply'));
  function apply(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ['tenant', 'from', 'to']) {
      if (form.elements[name].value) next.set(name, form.elements[name].value.trim());
    }
    app.navigate(`#/metrics?${next}`);
  }
  return form;
}

export async function render(root, route, app) {
  const params = route.params;
  append(root, h('h1', {}, 'Response times'), filterForm(params, app));
  let rows;
  try {
    rows = await caseMetrics({
      tenant: params.get('tenant') || undefined,
      from: dayStart(params.get('from')),
      to: dayStart(params.get('to')),
    });
  } catch (error) {
    append(root, error.unavailable ? unavailableNotice('Case metrics', error) : errorNotice(error));
    return;
  }
  if (rows.length === 0) {
    append(root, h('p', { class: 'empty', id: 'metrics-empty' }, 'No cases in this period.'));
    return;
  }
  append(root, h('table', { id: 'metrics', class: 'grid' },
    h('thead', {}, h('tr', {}, ['Tenant', 'Cases', 'MTTD', 'MTTA', 'MTTR', 'SLA breaches']
      .map((label) => h('th', {}, label)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-tenant': r.tenant },
      h('td', {}, r.tenant),
      h('td', { class: 'num' }, r.cases === null ? '-' : String(r.cases)),
      h('td', { class: 'num' }, formatDuration(r.mttd)),
      h('td', { class: 'num' }, formatDuration(r.mtta)),
      h('td', { class: 'num' }, formatDuration(r.mttr)),
      h('td', { class: 'num' }, r.breaches))))),
    h('p', { class: 'hint' }, 'MTTD: first event to detection. MTTA: detection to the first ',
      'analyst action. MTTR: detection to resolution.'));
}
