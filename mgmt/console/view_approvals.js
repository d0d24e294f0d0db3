// Playbook runs waiting for approval, each with a comment field and approve/deny buttons.
import { h, append, errorNotice, unavailableNotice, formatTime } from './dom.js';
import { listApprovals, decide } from './data_approvals.js';

function approvalRow(item, app) {
  const comment = h('input', { name: 'comment', class: 'comment', autocomplete: 'off',
    placeholder: 'Comment (recorded with the decision)', 'aria-label': `Comment for run ${item.run}` });
  const message = h('div', { class: 'form-message' });
  const act = (decision) => () => app.act(async () => {
    message.replaceChildren();
    try {
      await decide(item.run, decision, comment.value.trim());
      app.flash(`Run ${item.run} ${decision === 'approve' ? 'approved' : 'denied'}.`);
      await app.rerender();
    } catch (error) {
      append(message, error.unavailable ? unavailableNotice('Deciding approvals', error) : errorNotice(error));
    }
  });
  const caseLink = item.caseId !== ''
    ? h('a', { href: `#/cases/${encodeURIComponent(item.caseId)}` }, `case ${item.caseId}`)
    : '-';
  return h('tr', { 'data-run-id': item.run },
    h('td', {}, String(item.run)),
    h('td', {}, item.playbook),
    h('td', {}, item.step),
    h('td', {}, item.tenant),
    h('td', {}, caseLink),
    h('td', {}, formatTime(item.since)),
    h('td', {}, item.prompt),
    h('td', { class: 'decide' }, comment,
      h('button', { type: 'button', class: 'approve', onclick: act('approve') }, 'Approve'),
      h('button', { type: 'button', class: 'deny', onclick: act('deny') }, 'Deny'),
      message));
}

export async function render(root, route, app) {
  append(root, h('h1', {}, 'Approvals'));
  let items;
  try {
    items = await listApprovals();
  } catch (error) {
    append(root, error.unavailable ? unavailableNotice('Approvals', error) : errorNotice(error));
    return;
  }
  if (items.length === 0) {
    append(root, h('p', { class: 'empty', id: 'approvals-empty' }, 'No runs are waiting for approval.'));
    return;
  }
  append(root, h('table', { id: 'approvals', class: 'grid' },
    h('thead', {}, h('tr', {}, ['Run', 'Playbook', 'Step', 'Tenant', 'Case', 'Waiting since',
      'Prompt', 'Decision'].map((label) => h('th', {}, label)))),
    h('tbody', {}, items.map((item) => approvalRow(item, app)))));
}
