// Response-time metrics per tenant from GET /api/v1/metrics/cases?tenant=&from=&to=.
// vigild returns {"groups": [...]} with one group per tenant and severity plus one with
// severity "all" per tenant; the console shows the "all" groups, one row per tenant.
// {"items": [{"tenant", "cases", "mttd_s", "mtta_s", "mttr_s"}]} and a bare array are read
// too. Durations may also come as <name>_seconds or <name>_ms; rowFrom() maps them.
import { request } from './api.js';

// Reads duration `name` ("mttd") from `row` in seconds, or null when absent.
function seconds(row, name) {
  const nested = row[name];
  if (typeof nested === 'number') return nested;
  if (nested && typeof nested === 'object') {
    if (nested.count === 0) return null;  // no case reached this point yet
    return seconds({ [`${name}_s`]: nested.mean_s ?? nested.avg_s, [`${name}_ms`]: nested.mean_ms }, name);
  }
  if (typeof row[`${name}_s`] === 'number') return row[`${name}_s`];
  if (typeof row[`${name}_seconds`] === 'number') return row[`${name}_seconds`];
  if (typeof row[`${name}_ms`] === 'number') return row[`${name}_ms`] / 1000;
  return null;
}

// SLA breaches as text: a count, or "name: n" pairs when vigild splits them by target.
function breachesText(value) {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'object') {
    return Object.entries(value).map(([name, count]) => `${name}: ${count}`).join(', ');
  }
  return String(value);
}

function rowFrom(row) {
  return {
    tenant: row.tenant || '',
    cases: row.cases ?? row.case_count ?? row.count ?? null,
    mttd: seconds(row, 'mttd'),
    mtta: seconds(row, 'mtta'),
    mttr: seconds(row, 'mttr'),
    breaches: breachesText(row.breaches ?? row.sla_breaches),
  };
}

// `filters` holds tenant, from and to (RFC 3339); empty ones are left out.
export async function caseMetrics(filters) {
  const body = await request('GET', '/api/v1/metrics/cases', { query: filters });
  let rows = [];
  if (Array.isArray(body)) {
    rows = body;
  } else if (Array.isArray(body.groups)) {
    rows = body.groups.filter((group) => group.severity === 'all');
  } else {
    rows = body.items || body.tenants || [];
  }
  return rows.map(rowFrom);
}
