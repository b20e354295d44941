/** The live dashboard (GET /dashboard): one self-contained HTML page. */
export function dashboardHtml(): string {
  return '<!doctype html><title>Concord dashboard</title><p>dashboard</p>'
}
