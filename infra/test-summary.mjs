// Reads vitest's JSON report and prints `N passed, N failed` (skipped tests are listed
// separately). Exits 1 when anything failed or when the report is missing or empty, so a
// run that executed no test is never mistaken for a green one.
import { readFileSync } from 'node:fs';

const path = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(path, 'utf8'));
} catch {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
// Files that failed to load count as failures too (their tests never ran).
const brokenFiles = report.testResults.filter((file) => file.status === 'failed' && file.assertionResults.length === 0).length;
const passed = report.numPassedTests;
const failed = report.numFailedTests + brokenFiles;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
