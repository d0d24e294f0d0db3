// Playbook runs waiting for an analyst. GET /api/v1/approvals is expected to return
// {"items": [...]} or a bare array; adapt approvalFrom() when the fields change.
import { request } from './api.js';

function approvalFrom(item) {
  return {
    run: item.run_id ?? item.id ?? '',
    playbook: item.playbook || item.playbook_name || '',
    step: item.step || item.step_name || item.waiting_step || '',
    tenant: item.tenant || '',
    caseId: item.case_id ?? item.case ?? '',
    since: item.waiting_since || item.requested || item.created || '',
    prompt: item.prompt || item.reason || item.message || '',
  };
}

export async function listApprovals() {
  const body = await request('GET', '/api/v1/approvals');
  const items = Array.isArray(body) ? body : (body.items || []);
  return items.map(approvalFrom);
}

// POST /api/v1/runs/{id}/approve or /deny with {"comment"}. `decision` is "approve" or
// "deny".
export async function decide(runId, decision, comment) {
  if (decision !== 'approve' && decision !== 'deny') {
    throw new Error(`decision ${decision} is neither approve nor deny`);
  }
  return request('POST', `/api/v1/runs/${encodeURIComponent(runId)}/${decision}`,
    { body: { comment } });
}
