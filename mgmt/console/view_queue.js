// The case queue: filters, one page of cases and paging. The filters live in the URL
// (#/cases?status=new&offset=50), so a view can be bookmarked and Back works.
import { h, append, select, errorNotice, formatTime } from './dom.js';
import { listCases, STATUSES, SEVERITIES } from './data_cases.js';

const PAGE_SIZES = ['10', '25', '50', '100'];
const FILTERS = ['tenant', 'status', 'severity', 'assignee'];
const SORTS = [
  ['-detected', 'Newest first'], ['detected', 'Oldest first'],
  ['-severity', 'Most severe first'], ['-updated', 'Recently updated'],
];

function filterForm(params, app) {
  const field = (name, label, control) =>
    h('label', { class: 'field' }, h('span', {}, label), control);
  const form = h('form', { id: 'queue-filters', class: 'filters', onsubmit: apply },
    field('tenant', 'Tenant', h('input', { name: 'tenant', value: params.get('tenant') || '',
      list: 'tenant-options', autocomplete: 'off' })),
    field('status', 'Status', select({ name: 'status' },
      [['', 'Any'], ...STATUSES.map((s) => [s, s.replace('_', ' ')])], params.get('status'))),
    field('severity', 'Severity', select({ name: 'severity' },
      [['', 'Any'], ...SEVERITIES.map((s) => [s, s])], params.get('severity'))),
    field('assignee', 'Assignee', h('input', { name: 'assignee',
      value: params.get('assignee') || '', autocomplete: 'off' })),
    field('sort', 'Order', select({ name: 'sort' }, SORTS, params.get('sort') || '-detected')),
    field('limit', 'Per page', select({ name: 'limit' }, PAGE_SIZES.map((n) => [n, n]),
      params.get('limit') || '25')),
    h('button', { type: 'submit', id: 'apply-filters' }, 'Apply'),
    h('datalist', { id: 'tenant-options' },
      (app.identity?.tenants || []).map((t) => h('option', { value: t }))));

  function apply(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of [...FILTERS, 'sort', 'limit']) {
      const value = form.elements[name].value.trim();
      if (value) next.set(name, value);
    }
    app.navigate(`#/cases?${next}`);
  }
  return form;
}

function caseRow(c) {
  return h('tr', { 'data-case-id': c.id },
    h('td', {}, String(c.id)),
    h('td', {}, h('span', { class: `badge sev-${c.severity}` }, c.severity)),
    h('td', {}, h('span', { class: `badge st-${c.status}` }, String(c.status).replace('_', ' '))),
    h('td', { class: 'title' }, h('a', { href: `#/cases/${encodeURIComponent(c.id)}` }, c.title)),
    h('td', {}, c.tenant),
    h('td', {}, c.assignee || '-'),
    h('td', { class: 'num' }, String(c.alert_count ?? '')),
    h('td', {}, formatTime(c.detected)));
}

function pager(page, params, app) {
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;
  const go = (offset) => () => {
    const next = new URLSearchParams(params);
    if (offset > 0) next.set('offset', String(offset)); else next.delete('offset');
    app.navigate(`#/cases?${next}`);
  };
  const size = page.limit || page.items.length || 1;
  return h('div', { class: 'pager' },
    h('button', { type: 'button', id: 'page-prev', disabled: page.offset <= 0,
      onclick: go(Math.max(0, page.offset - size)) }, 'Previous'),
    h('span', { id: 'page-range' }, `${first}-${last} of ${page.total}`),
    h('button', { type: 'button', id: 'page-next', disabled: last >= page.total,
      onclick: go(page.offset + size) }, 'Next'));
}

export async function render(root, route, app) {
  const params = route.params;
  append(root, h('h1', {}, 'Cases'), filterForm(params, app));
  const filters = Object.fromEntries(
    [...FILTERS, 'sort', 'offset'].map((name) => [name, params.get(name) || undefined]));
  filters.limit = params.get('limit') || '25';

  let page;
  try {
    page = await listCases(filters);
  } catch (error) {
    append(root, errorNotice(error));
    return;
  }
  if (page.items.length === 0) {
    append(root, h('p', { class: 'empty', id: 'queue-empty' }, 'No cases match these filters.'));
  } else {
    append(root, h('table', { id: 'case-table', class: 'grid' },
      h('thead', {}, h('tr', {}, ['ID', 'Severity', 'Status', 'Title', 'Tenant', 'Assignee',
        'Alerts', 'Detected'].map((label) => h('th', {}, label)))),
      h('tbody', {}, page.items.map(caseRow))));
  }
  append(root, pager(page, params, app));
}
