// Reads one or more vitest JSON reports (one per project run) and prints one combined line
// `N passed, N failed` (skipped tests are listed separately). A report that is missing or
// unreadable counts as one failure (its run crashed before reporting), and the script exits
// 1 when anything failed or nothing passed, so a run that executed no test is never
// mistaken for a green one.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
const paths = process.argv.slice(2);
if (paths.length === 0) failed++;
for (const path of paths) {
  let report;
  try {
    report = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    failed++;
    continue;
  }
  // Files that failed to load count as failures too (their tests never ran).
  const brokenFiles = report.testResults.filter((file) => file.status === 'failed' && file.assertionResults.length === 0).length;
  passed += report.numPassedTests;
  failed += report.numFailedTests + brokenFiles;
  skipped += report.numPendingTests + report.numTodoTests;
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
