// Regenerates README.md's tables that are computed from tested data:
// `npm run docs`. test/unit/change-impact.test.ts fails while they differ.
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { CHANGE_IMPACTS, renderChangeImpactTable } from "../test/support/change-impact";

const readmePath = path.join(__dirname, "..", "README.md");
const readme = readFileSync(readmePath, "utf8");
const block = /(<!-- change-impact:start -->\n)[\s\S]*?(<!-- change-impact:end -->)/;
if (!block.test(readme)) {
    throw new Error("README.md has no <!-- change-impact:start --> ... <!-- change-impact:end --> block");
}
writeFileSync(
    readmePath,
    readme.replace(block, (_, start: string, end: string) => start + renderChangeImpactTable(CHANGE_IMPACTS) + end),
);
